"""The example workflow of the design, shared by the workflow tests."""

EXAMPLE = """\
workflow:
  start_pool: analysts            # where new series start
  pools:
    analysts:   {users: [ana, bob], rights: [annotate], assign_to: [reviewers]}
    reviewers:  {users: [rita], rights: [review, annotate], assign_to: [analysts, scientists], approve_to: scientists, send_back_to: analysts}
    scientists: {users: [sam], rights: [read, export], assign_to: []}
  admins: [root]                   # may do anything, break locks
"""

"""Every component id of the UI in one place.

The browser scripts (``assets/ril*.js``) get the ids they need from :data:`BROWSER`, which the
slice viewer writes into its page; tests use the names here too.
"""

# shell
URL = "ril-url"
PRELOAD = "plotly-preload"
PRELOAD_TIMER = "plotly-preload-timer"

# project viewer
GRID = "series-grid"
#: the project grid was asked to fetch its rows again (folder or search changed)
GRID_REFRESH = "series-grid-refresh"
SEARCH = "series-search"
FOLDERS = "folder-tree"
FOLDER_STORE = "folder-selected"
FOLDER_FILTER = "folder-filter"
SERIES_COUNT = "series-count"
EXPORT_LINK = "export-link"

# slice viewer
VIEWER_GRAPH = "viewer-graph"
VIEWER_META = "viewer-meta"
VIEWER_TITLE = "viewer-title"
VIEWER_POSITION = "viewer-position"
VIEWER_READOUT = "viewer-readout"
VIEWER_ERROR = "viewer-error"
VIEWER_WARNINGS = "viewer-warnings"
SLICE_SLIDER = "slice-slider"
PLANE = "plane-select"
FRAME = "frame-slider"
FRAME_BOX = "frame-box"
WINDOW_PRESET = "window-preset"
WINDOW_CENTER = "window-center"
WINDOW_WIDTH = "window-width"
VIEWER_STATUS = "viewer-status"
VIEWPORT = "ril-viewport"
BRUSH_CURSOR = "ril-brush-cursor"
ORIENT_LEFT = "ril-orient-left"
ORIENT_RIGHT = "ril-orient-right"
ORIENT_TOP = "ril-orient-top"
ORIENT_BOTTOM = "ril-orient-bottom"
THREE_PLANES = "ril-three-planes"      # the toggle of the three-plane layout
SIDE_VIEWS = "ril-side-views"          # the column of the two other planes
CROSSHAIR = "ril-crosshair"            # the cursor's lines over the main image
#: the closed sections of the controls (models, explanations, shortcuts, disagreements,
#: comparison), filled once the first slice is on screen, and the store that asks for them
VIEWER_SECTIONS = "viewer-sections"
VIEWER_SECTIONS_WANTED = "viewer-sections-wanted"
#: the first slice as a plain image, shown until the graph has drawn it (assets/ril_viewer.js)
VIEWER_PREVIEW = "viewer-preview"

# the /rois page: one list editor per named list of project.yaml (components/list_editor.py)
ROI_SHA = "roi-sha"  # the SHA-256 of project.yaml the page last saw (shared by the editors)
ROI_READ_ONLY = "roi-read-only"
ROI_EDITOR = "roi"  # the prefix of the ROI editor's ids
TF_EDITOR = "tf"  # the prefix of the text-field editor's ids


def editor_id(prefix: str, part: str) -> str:
    """The id of one part of a list editor: ``"<prefix>-<part>"``.

    Parts: ``table alert status add add-<field> edit-form edit-title edit-target edit-<field>
    edit-fixed edit-save edit-cancel delete-dialog delete-message delete-target delete-text
    delete-confirm delete-cancel``, and ``<form>-<field>-field`` around a field shown only for
    some kinds. The per-row buttons have pattern-matching ids ``{"type": "<prefix>-edit-button"
    | "<prefix>-move-button" | "<prefix>-delete-button", "item": name[, "offset": ±1]}``.

    >>> editor_id(ROI_EDITOR, "add-name")
    'roi-add-name'
    """
    return f"{prefix}-{part}"


# annotation panel
ANNOT_ROIS = "annot-rois"
ANNOT_VERSION = "annot-version"
ANNOT_SINK = "annot-sink"
ANNOT_ROI = "annot-roi"
ANNOT_HIDDEN = "annot-hidden"
ANNOT_TOOL = "annot-tool"
ANNOT_BRUSH = "annot-brush"
ANNOT_UNIT = "annot-unit"
ANNOT_DEPTH = "annot-depth"
ANNOT_LIMIT = "annot-limit"
ANNOT_LO = "annot-lo"
ANNOT_HI = "annot-hi"
ANNOT_ACTION = "annot-action"
ANNOT_SCOPE = "annot-scope"
ANNOT_MESSAGE = "annot-message"
ANNOT_STYLE = "annot-style"
ANNOT_OPACITY = "annot-opacity"
ANNOT_HISTORY = "annot-history"
ANNOT_POINTS = "annot-points"
CONTOUR_PRESET = "contour-preset"
CONTOUR_METHOD = "contour-method"
CONTOUR_BAND = "contour-band"
CONTOUR_SIGMA = "contour-sigma"
CONTOUR_ALPHA = "contour-alpha"
CONTOUR_ITERATIONS = "contour-iterations"
CONTOUR_SMOOTHING = "contour-smoothing"
CONTOUR_LIMIT = "contour-limit"
CONTOUR_FIRST = "contour-first"
CONTOUR_LAST = "contour-last"
ANNOT_COPY_FIRST = "annot-copy-first"  # copy an ROI to frames first..last (4D series)
ANNOT_COPY_LAST = "annot-copy-last"
LEASE_BANNER = "lease-banner"
LEASE_RETRY = "lease-retry"
LEASE_BREAK = "lease-break"
LEASE_REPAIR = "lease-repair"
STATS_ROI = "stats-roi"
STATS_SCOPE = "stats-scope"
STATS_RUN = "stats-run"
STATS_OUT = "stats-out"
STATS_HISTOGRAM = "stats-histogram"
SLICE_INDICATOR = "slice-indicator"

# export page
EXPORT_OUT = "export-out"
EXPORT_MODE = "export-mode"
EXPORT_GLOB = "export-glob"
EXPORT_OPTIONS = "export-options"
EXPORT_START = "export-start"
EXPORT_CANCEL = "export-cancel"
EXPORT_PROGRESS = "export-progress"
EXPORT_STATUS = "export-status"
EXPORT_RESULT = "export-result"
EXPORT_DONE = "export-done"

# text annotations
TEXT_FIELD = "text-field"
TEXT_MESSAGE = "text-message"

# import form (export page)
IMPORT_DIR = "import-dir"
IMPORT_MAPPING = "import-mapping"
IMPORT_START = "import-start"
IMPORT_RESULT = "import-result"
IMPORT_DONE = "import-done"

# workflow board
WF_REFRESH = "wf-refresh"
WF_POOL = "wf-pool"
WF_TIMER = "wf-timer"
WF_CARDS = "wf-cards"
WF_POOL_CARD = "wf-pool-card"
WF_SHOW = "wf-show"
WF_SEARCH = "wf-search"
WF_COUNT = "wf-count"
WF_GRID = "wf-grid"
WF_ACTIONS = "wf-actions"
WF_ACTION = "wf-action"
WF_ASSIGN_TARGET = "wf-assign-target"
WF_MESSAGE = "wf-message"
WF_DONE = "wf-done"

# audit log
AUDIT_USER = "audit-user"
AUDIT_ACTION = "audit-action"
AUDIT_SERIES = "audit-series"
AUDIT_SINCE = "audit-since"
AUDIT_GRID = "audit-grid"
AUDIT_COUNT = "audit-count"
AUDIT_NEWEST = "audit-newest"
AUDIT_OLDER = "audit-older"
AUDIT_PAGE = "audit-page"

# jobs: the /jobs page, and the job parts of the export page and of the import form
JOBS_TABLE = "jobs-table"
JOBS_TIMER = "jobs-timer"
JOBS_REFRESH = "jobs-refresh"
JOBS_MESSAGE = "jobs-message"
JOBS_CANCEL = "jobs-cancel"  # pattern-matching id type: {"type": JOBS_CANCEL, "job": job id}
JOBS_CANCEL_DONE = "jobs-cancel-done"
JOBS_EMPTY = "jobs-empty"
JOB_WORKERS = "job-workers"
JOB_WORKERS_TIMER = "job-workers-timer"
JOB_WORKERS_NONE = "job-workers-none"
EXPORT_JOB = "export-job"
IMPORT_JOB = "import-job"
IMPORT_PROGRESS = "import-progress"
IMPORT_STATUS = "import-status"
IMPORT_CANCEL = "import-cancel"

# models: the /models page, the notice in the header, the viewer's Models panel, the project
# page's run form
MODELS_LIST = "models-list"
MODELS_MESSAGE = "models-message"
MODELS_REFRESH = "models-refresh"
MODELS_UPLOAD = "models-upload"
MODELS_TOGGLE = "models-toggle"  # pattern-matching: {"type": MODELS_TOGGLE, "model": id}
MODELS_ACTIVATE = "models-activate"  # {"type": MODELS_ACTIVATE, "ref": "id@version"}
MODELS_TRUST = "models-trust"  # {"type": MODELS_TRUST, "ref": "id@version"}
MODELS_TRUST_DIALOG = "models-trust-dialog"
MODELS_TRUST_REF = "models-trust-ref"
MODELS_DONE = "models-done"
# the Models page's "Train a development model" form
TRAIN_SECTION = "train-section"
TRAIN_FROM = "train-from"
TRAIN_ID = "train-id"
TRAIN_POOL = "train-pool"
TRAIN_ROIS = "train-rois"
TRAIN_FIELD = "train-field"
TRAIN_EPOCHS = "train-epochs"
TRAIN_BUDGET = "train-budget"
TRAIN_START = "train-start"
TRAIN_CANCEL = "train-cancel"
TRAIN_PROGRESS = "train-progress"
TRAIN_STATUS = "train-status"
TRAIN_JOB = "train-job"
TRAIN_RESULT = "train-result"
TRAIN_CURVE = "train-curve"
TRAIN_TIMER = "train-timer"
TRAIN_DONE = "train-done"
NOTICE_TIMER = "models-notice-timer"
NOTICE_SEEN = "models-notice-seen"
NOTICE = "models-notice"
RUN_MODEL = "run-model"
RUN_SCOPE = "run-scope"
RUN_FIRST = "run-first"
RUN_LAST = "run-last"
RUN_MODE = "run-mode"
RUN_ESTIMATE = "run-estimate"
RUN_START = "run-start"
RUN_CANCEL = "run-cancel"
RUN_PROGRESS = "run-progress"
RUN_STATUS = "run-status"
RUN_JOB = "run-job"
RUN_RESULT = "run-result"
RUN_DONE = "run-done"
#: the version a finished run wrote, handed on to ANNOT_VERSION in the browser
RUN_VERSION = "run-version"
# "What the model sees" (components/explain_panel.py, assets/ril_heatmap.js)
EXPLAIN_OPEN = "explain-open"  # the section's summary: opening it lists the model's layers
EXPLAIN_MODEL = "explain-model"
EXPLAIN_METHOD = "explain-method"
EXPLAIN_LAYER = "explain-layer"
EXPLAIN_TARGET = "explain-target"
EXPLAIN_SCOPE = "explain-scope"
EXPLAIN_FIRST = "explain-first"
EXPLAIN_LAST = "explain-last"
EXPLAIN_SHOW = "explain-show"  # this slice, at once
EXPLAIN_START = "explain-start"  # a range or the series, as a job
EXPLAIN_CANCEL = "explain-cancel"
EXPLAIN_PROGRESS = "explain-progress"
EXPLAIN_STATUS = "explain-status"
EXPLAIN_JOB = "explain-job"
EXPLAIN_RESULT = "explain-result"
EXPLAIN_MESSAGE = "explain-message"
EXPLAIN_SHOWN = "explain-shown"  # the map set on screen: {series, params, token}
EXPLAIN_OPACITY = "explain-opacity"
EXPLAIN_AUTO = "explain-auto"
EXPLAIN_THRESHOLD = "explain-threshold"
EXPLAIN_HIDE = "explain-hide"
EXPLAIN_NIFTI = "explain-nifti"
EXPLAIN_PNG = "explain-png"
EXPLAIN_DOWNLOAD = "explain-download"
BATCH_MODEL = "batch-model"
BATCH_SCOPE = "batch-scope"
BATCH_ACTION = "batch-action"
BATCH_MODE = "batch-mode"
BATCH_ESTIMATE = "batch-estimate"
BATCH_START = "batch-start"
BATCH_CANCEL = "batch-cancel"
BATCH_PROGRESS = "batch-progress"
BATCH_STATUS = "batch-status"
BATCH_JOB = "batch-job"
BATCH_RESULT = "batch-result"
BATCH_DONE = "batch-done"

# "Check first" section of the slice viewer (components/disagreement_panel.py)
DISAGREE_OPEN = "disagree-open"  # the section's summary: opening it loads the list
DISAGREE_LIST = "disagree-list"
DISAGREE_ROW = "disagree-row"  # pattern-matching id type: {"type": DISAGREE_ROW, "index": slice}
DISAGREE_JUMP = "disagree-jump"

# compare panel of the slice viewer (components/compare_panel.py)
COMPARE_OPEN = "compare-open"  # the section's summary: opening it loads the choices
COMPARE_A_VERSION = "compare-a-version"
COMPARE_A_ROI = "compare-a-roi"
COMPARE_B_VERSION = "compare-b-version"
COMPARE_B_ROI = "compare-b-roi"
COMPARE_SLICES = "compare-slices"
COMPARE_RUN = "compare-run"
COMPARE_MESSAGE = "compare-message"
COMPARE_SCORES = "compare-scores"
COMPARE_PLOT = "compare-plot"
COMPARE_TABLE = "compare-table"
COMPARE_ROW = "compare-row"  # pattern-matching id type: {"type": COMPARE_ROW, "index": slice}
COMPARE_DONE = "compare-done"  # what was compared (sources and plane), for the downloads
COMPARE_CSV = "compare-csv"
COMPARE_EXCEL = "compare-excel"
COMPARE_DOWNLOAD = "compare-download"
COMPARE_JUMP = "compare-jump"

# model scores page (/scores)
SCORES_REFRESH = "scores-refresh"
SCORES_MESSAGE = "scores-message"
SCORES_MEANS = "scores-means"
SCORES_GRID = "scores-grid"
SCORES_EFFORT = "scores-effort"
SCORES_LOOP = "scores-loop"
SCORES_CSV = "scores-csv"
SCORES_MEANS_CSV = "scores-means-csv"
SCORES_EXCEL = "scores-excel"
SCORES_DOWNLOAD = "scores-download"

#: The ids the browser scripts look up, by the names they use (``rilPage.el("graph")`` in
#: ``assets/ril.js``). The slice viewer writes this table into its page (the ``data-ril-config``
#: attribute of its root element), so the scripts spell no id themselves.
BROWSER = {
    # the viewer (assets/ril_viewer.js, assets/ril.js)
    "graph": VIEWER_GRAPH, "slider": SLICE_SLIDER, "frame": FRAME, "viewport": VIEWPORT,
    "position": VIEWER_POSITION, "readout": VIEWER_READOUT, "status": VIEWER_STATUS,
    "windowCenter": WINDOW_CENTER, "windowWidth": WINDOW_WIDTH,
    "orientLeft": ORIENT_LEFT, "orientRight": ORIENT_RIGHT, "orientTop": ORIENT_TOP,
    "orientBottom": ORIENT_BOTTOM, "sectionsWanted": VIEWER_SECTIONS_WANTED,
    "preview": VIEWER_PREVIEW,
    # the three-plane layout (assets/ril_planes.js)
    "threePlanes": THREE_PLANES, "sideViews": SIDE_VIEWS, "crosshair": CROSSHAIR, "plane": PLANE,
    # the annotation layer (assets/ril_annotate.js)
    "message": ANNOT_MESSAGE, "version": ANNOT_VERSION, "tool": ANNOT_TOOL, "brush": ANNOT_BRUSH,
    "roi": ANNOT_ROI, "history": ANNOT_HISTORY, "points": ANNOT_POINTS,
    "copyFirst": ANNOT_COPY_FIRST, "copyLast": ANNOT_COPY_LAST,
    "indicator": SLICE_INDICATOR, "brushCursor": BRUSH_CURSOR, "leaseBanner": LEASE_BANNER,
    "leaseRetry": LEASE_RETRY, "leaseBreak": LEASE_BREAK, "leaseRepair": LEASE_REPAIR,
    # semi-automatic contouring (read by ril_annotate.js when a contouring action starts)
    "contourPreset": CONTOUR_PRESET, "contourMethod": CONTOUR_METHOD, "contourBand": CONTOUR_BAND,
    "contourSigma": CONTOUR_SIGMA, "contourAlpha": CONTOUR_ALPHA,
    "contourIterations": CONTOUR_ITERATIONS, "contourSmoothing": CONTOUR_SMOOTHING,
    "contourLimit": CONTOUR_LIMIT, "contourFirst": CONTOUR_FIRST, "contourLast": CONTOUR_LAST,
}

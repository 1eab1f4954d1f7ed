"""``ril-dash plugins PROJECT ...``: model bundles from the command line, without a server.

::

    ril-dash plugins PROJECT list                     every bundle version, its status, errors
    ril-dash plugins PROJECT check BUNDLE [--no-load] validate a version folder: manifest, file
                                                      hash, safety scan, and the model loaded in
                                                      the model worker (shapes vs the manifest)
    ril-dash plugins PROJECT import ZIP               install the versions of a bundle .zip
    ril-dash plugins PROJECT export ID[@V] OUT        write a bundle (all versions, or one) as .zip
    ril-dash plugins PROJECT enable ID | disable ID
    ril-dash plugins PROJECT activate ID@V | ID       pin the active version (rollback) / unpin
    ril-dash plugins PROJECT trust ID@V               let that exact file load its custom code

``--plugins DIR`` (repeatable, after the ACTION) adds a lab's plugin folders, as for ``ril-dash serve``. Changes
go through :mod:`ril_dash.application.model_admin` and are audited under ``--user`` (default:
the operating-system user, acting as an admin: whoever runs this has the project's files).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from ril_dash.errors import PluginError, RilDashError

ACTIONS = ("list", "check", "import", "export", "enable", "disable", "activate", "trust")


def add_plugins_parser(sub, add_user_option) -> None:
    """Add ``plugins`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p = sub.add_parser("plugins", help="list, check, import, export and manage model bundles",
                       description="Model bundles (Keras models with a plugin.yaml) of "
                                   "PROJECT_DIR/plugins, the --plugins folders and the "
                                   "examples shipped with ril_dash.")
    p.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR",
                        help="another folder of bundles (<id>/<version>/plugin.yaml); "
                             "repeatable")
    add_user_option(common, "who makes the change, as recorded in the audit log")
    acts = p.add_subparsers(dest="plugins_action", metavar="ACTION", required=True)
    add = functools.partial(acts.add_parser, parents=[common])
    add("list", help="every bundle version with its status")
    check = add("check", help="validate a bundle version folder")
    check.add_argument("bundle", type=Path, metavar="BUNDLE",
                       help="a version folder (<id>/<version>/) or its plugin.yaml")
    check.add_argument("--no-load", action="store_true",
                       help="do not load the model in the model worker (no TensorFlow)")
    imp = add("import", help="install the versions of a bundle .zip")
    imp.add_argument("zip", type=Path, metavar="ZIP")
    exp = add("export", help="write a bundle's versions (or one) as a .zip")
    exp.add_argument("ref", metavar="ID[@VERSION]")
    exp.add_argument("out", type=Path, metavar="OUT", help="the .zip to write (must not exist)")
    exp.add_argument("--no-validation", dest="validation", action="store_false",
                     help="leave the validation reports out")
    for name, what in (("enable", "enable a bundle for the project"),
                       ("disable", "disable a bundle for the project")):
        add(name, help=what).add_argument("model_id", metavar="ID")
    add("activate", help="make a version active (ID alone: the newest one)"
        ).add_argument("ref", metavar="ID@VERSION")
    add("trust", help="trust the model file of a version (its custom code may run)"
        ).add_argument("ref", metavar="ID@VERSION")


def _split(ref: str, *, need_version: bool) -> tuple[str, str | None]:
    model_id, _, version = ref.partition("@")
    if not model_id or (need_version and not version):
        raise PluginError(f"{ref!r}: give the bundle as ID@VERSION, e.g. kidney-seg@1.0.0")
    return model_id, version or None


def plugins_command(args: argparse.Namespace) -> None:
    """Run ``ril-dash plugins``."""
    from ril_dash.models.registry import ModelRegistry

    registry = ModelRegistry(args.project_dir, args.plugins)
    action = args.plugins_action
    if action == "list":
        list_bundles(registry)
    elif action == "check":
        check_bundle(registry, args.bundle, load=not args.no_load)
    elif action == "export":
        export(registry, args)
    else:
        change(registry, args)


def _project_config(project_dir: Path):
    from ril_dash.project.schema import load_project_config

    return load_project_config(project_dir)


def list_bundles(registry) -> None:
    from ril_dash.models.manifest import project_problems

    config = _project_config(registry.project_dir)
    state, entries = registry.state(), registry.entries()
    if not entries:
        print(f"No model bundles in {', '.join(map(str, registry.roots()))}. Put one in "
              f"{registry.project_dir / 'plugins'}/<id>/<version>/ or import a .zip.")
        return
    active = {}
    for entry in entries:
        if entry.manifest is not None and entry.id not in active:
            try:
                active[entry.id] = registry.resolve(entry.id).version
            except PluginError:
                active[entry.id] = None
    for entry in entries:
        if entry.error:
            print(f"{entry.id} {entry.version or '-'}  ERROR  {entry.error}")
            continue
        m = entry.manifest
        status = ("disabled" if not state.is_enabled(entry.id)
                  else "active" if active.get(entry.id) == entry.version else "available")
        trusted = ", trusted" if state.is_trusted(m.sha256) else ""
        print(f"{entry.id} {entry.version}  {status}{trusted}  {m.task} {m.dimension}D  "
              f"{m.name}  ({entry.root})")
        for problem in project_problems(m, config):
            print(f"    does not fit this project: {problem}")


def check_bundle(registry, bundle: Path, *, load: bool) -> None:
    """Validate a version folder; raise PluginError for the first problem found."""
    from ril_dash.models.catalog import bundle_entry
    from ril_dash.models.manifest import MANIFEST_FILE, model_shape_problems, project_problems

    folder = bundle.parent if bundle.name == MANIFEST_FILE else bundle
    folder = folder.expanduser().resolve()
    if not (folder / MANIFEST_FILE).is_file():
        raise PluginError(f"{folder} holds no {MANIFEST_FILE}; give a bundle version folder "
                          f"(<id>/<version>/)")
    entry = bundle_entry(folder.parent.parent, folder)
    if entry.error:
        raise PluginError(entry.error)
    m = entry.manifest
    print(f"{m.ref}: manifest valid ({m.task}, dimension {m.dimension}, {m.input.plane} "
          f"{m.input.size[0]}×{m.input.size[1]}, {m.input.channels} input channel(s)); model "
          f"file {m.model_file} matches its sha256 {m.sha256}")
    try:
        for problem in project_problems(m, _project_config(registry.project_dir)):
            print(f"warning: does not fit this project: {problem}")
    except RilDashError as exc:
        print(f"warning: the project's definitions could not be read: {exc}")
    trusted = registry.state().is_trusted(m.sha256)
    if trusted:
        print(f"{m.ref}: trusted by {registry.state().trusted[m.sha256]['user']}; the safety "
              f"scan is skipped")
    else:
        from ril_dash.models.safety import scan_model_file

        scan_model_file(entry.model_path)
        print(f"{m.ref}: safety scan passed (only allowed Keras layers, no custom code)")
    if not load:
        return
    from ril_dash.models.worker_client import ModelRef, ModelWorker

    custom = None if m.custom_objects is None else str(folder / m.custom_objects)
    info = ModelWorker.shared().inspect(ModelRef(str(entry.model_path), m.sha256, m.ref,
                                                 trusted, custom))
    print(f"{m.ref}: loaded in the model worker: inputs {info['inputs']}, outputs "
          f"{info['outputs']}, {info['params']} parameters")
    problems = model_shape_problems(m, info["inputs"], info["outputs"])
    if problems:
        raise PluginError("; ".join(problems))
    print(f"{m.ref}: the model's shapes fit the manifest")


def export(registry, args: argparse.Namespace) -> None:
    from ril_dash.models.bundle_zip import export_bundle_zip

    model_id, version = _split(args.ref, need_version=False)
    if version is not None:
        entries = [registry.find(model_id, version)]
    else:
        found = [e for e in registry.entries() if e.id == model_id and e.version]
        if not found:
            registry.resolve(model_id)  # raises: no such bundle, saying which exist
        entries = [e for e in found if e.ok]
        for entry in found:
            if not entry.ok:
                print(f"skipped {entry.ref}: {entry.error}")
    out = export_bundle_zip(entries, args.out, with_validation=args.validation)
    print(f"Wrote {', '.join(e.ref for e in entries)} to {out}.")


def change(registry, args: argparse.Namespace) -> None:
    from ril_dash.application import model_admin
    from ril_dash.cli import cli_services, cli_actor

    services, actor = cli_services(args.project_dir, args.plugins), cli_actor(args)
    action = args.plugins_action
    if action == "import":
        installed = model_admin.import_bundle(services, actor, args.zip)
        print(f"Imported {', '.join(f'{i} {v}' for i, v in installed)} into "
              f"{args.project_dir / 'plugins'}.")
    elif action in ("enable", "disable"):
        model_admin.set_model_enabled(services, actor, args.model_id, action == "enable")
        print(f"{args.model_id} is {action}d for this project.")
    elif action == "activate":
        model_id, version = _split(args.ref, need_version=False)
        model_admin.activate_model_version(services, actor, model_id, version)
        print(f"{model_id} {version} is now the active version." if version else
              f"{model_id}: its newest valid version is active again.")
    else:  # trust
        model_id, version = _split(args.ref, need_version=True)
        state = model_admin.trust_model_version(services, actor, model_id, version)
        sha = registry.find(model_id, version).manifest.sha256
        print(f"{model_id} {version} (sha256 {sha}) is trusted by "
              f"{state.trusted[sha]['user']}: its custom objects may be loaded.")

"""``mesh export kubernetes SCENARIO --out DIR``: the kustomization written to a new folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from mesh.errors import InputError
from mesh.export.kubernetes import export_kubernetes
from mesh.pki import files
from mesh.pki.key_cache import KeyCache
from mesh.pki.keys import fresh_keys
from mesh.scenario.keygen import keys_for
from mesh.scenario.load import load_scenario

__all__ = ["kubernetes_command"]


def kubernetes_command(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)  # checked as it loads
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(args.out, "already exists and is not an empty folder",
                         "give a new folder to --out (stale manifests would linger there)")
    text = Path(args.scenario).read_text(encoding="utf-8")
    # The user's key cache, as mesh run uses (test keys for emulated appliances only).
    keys = keys_for(scenario, cache=KeyCache.default()) or fresh_keys
    export = export_kubernetes(scenario, scenario_text=text, keys=keys, workers=args.workers,
                               namespace=args.namespace, image=args.image, out=args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(args.out, f"cannot be created ({exc.strerror})", "choose another folder") from None
    for name, content in export.files.items():
        # Manifests with Secrets hold keys: as private as the keys themselves.
        if name in export.private:
            files.write_file(out / name, content.encode(), mode=files.KEY_MODE)
        else:
            files.write_file(out / name, content.encode())
    appliances = sum(len(s.names) for s in export.shards)
    print(f"mesh: wrote {out}/kustomization.yaml and {len(export.files) - 1} files: "
          f"{appliances} appliances in {len(export.shards)} shards, namespace {export.namespace}")
    if export.grown:
        print(f"mesh: {export.grown}")
    print(f"mesh: build the image from mesh's source tree: podman build -f {out}/Containerfile "
          f"-t {args.image} .")
    print(f"mesh: deploy: {export.apply_command(str(out))}   (the Job 'driver' plays the "
          f"timeline: kubectl -n {export.namespace} logs -f job/driver)")
    return 0

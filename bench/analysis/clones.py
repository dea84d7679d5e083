"""Full clone vs partial clone (plus fetching only the analysed blobs), served from the mirrors over upload-pack."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from bench.analysis.corpus import Repo, dir_bytes

UPLOAD_PACK = "git -c uploadpack.allowFilter=true -c uploadpack.allowAnySHA1InWant=true upload-pack"
# Corpus mirrors were fetched without blobs of 4 MiB and more (they are promisor packs with no
# promisor remote), so a plain clone of them dies in pack-objects. The "full" clone therefore asks
# for blob:limit=4m and lets the server's pack-objects skip what the mirror itself lacks; that is
# every object the mirror holds, which is what a full clone of it can be.
HOOK_SCRIPT = '#!/bin/sh\nexec "$@" --missing=allow-any\n'


def run_clones(repos: list[Repo], tmp: Path) -> dict:
    """Full clone vs partial clone + fetch of the analysed blobs; sizes of what arrived."""
    hook = tmp / "pack-objects-hook.sh"
    hook.write_text(HOOK_SCRIPT)
    hook.chmod(0o755)
    full_upload = UPLOAD_PACK.replace(" upload-pack", f" -c uploadpack.packObjectsHook={hook} upload-pack")
    keep_packed = ["-c", "fetch.unpackLimit=1", "-c", "transfer.unpackLimit=1"]  # all arrivals stay packs
    figures = {
        "full_seconds": 0.0,
        "full_pack_bytes": 0,
        "full_disk_bytes": 0,
        "partial_seconds": 0.0,
        "partial_clone_seconds": 0.0,
        "partial_fetch_seconds": 0.0,
        "partial_pack_bytes": 0,
        "partial_disk_bytes": 0,
        "blobs_fetched": 0,
        "failures": [],
    }

    def packs(d: Path) -> int:
        return sum(p.stat().st_size for p in (d / "objects" / "pack").glob("*.pack"))

    for i, repo in enumerate(repos):
        url = f"file://{repo.git_dir.resolve()}"
        full, part = tmp / f"full-{i}.git", tmp / f"partial-{i}.git"
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                "git",
                *keep_packed,
                "clone",
                "-q",
                "--bare",
                "--no-local",
                "--filter=blob:limit=4m",
                f"--upload-pack={full_upload}",
                url,
                str(full),
            ],
            capture_output=True,
        )
        figures["full_seconds"] += time.perf_counter() - t0
        if r.returncode:
            figures["failures"].append(f"full {repo.name}: {r.stderr.decode()[-200:]}")
        else:
            figures["full_pack_bytes"] += packs(full)
            figures["full_disk_bytes"] += dir_bytes(full)
        shutil.rmtree(full, ignore_errors=True)

        t0 = time.perf_counter()
        r = subprocess.run(
            [
                "git",
                *keep_packed,
                "clone",
                "-q",
                "--bare",
                "--filter=blob:none",
                "--depth",
                "1",
                "--no-tags",
                f"--upload-pack={UPLOAD_PACK}",
                url,
                str(part),
            ],
            capture_output=True,
        )
        t1 = time.perf_counter()
        oids = sorted({b.sha for b in repo.analysed})
        if r.returncode == 0 and oids:
            # noop negotiation: otherwise the server sees our commit as a "have" and sends nothing
            f = subprocess.run(
                [
                    "git",
                    *keep_packed,
                    "-c",
                    "fetch.negotiationAlgorithm=noop",
                    "--git-dir",
                    str(part),
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--filter=blob:none",
                    f"--upload-pack={UPLOAD_PACK}",
                    "origin",
                    "--stdin",
                ],
                input="\n".join(oids).encode(),
                capture_output=True,
            )
            if f.returncode:
                figures["failures"].append(f"fetch {repo.name}: {f.stderr.decode()[-200:]}")
            figures["blobs_fetched"] += len(oids)
        t2 = time.perf_counter()
        figures["partial_clone_seconds"] += t1 - t0
        figures["partial_fetch_seconds"] += t2 - t1
        figures["partial_seconds"] += t2 - t0
        if r.returncode:
            figures["failures"].append(f"partial {repo.name}: {r.stderr.decode()[-200:]}")
        else:
            figures["partial_pack_bytes"] += packs(part)
            figures["partial_disk_bytes"] += dir_bytes(part)
        shutil.rmtree(part, ignore_errors=True)
    hook.unlink()
    return figures

"""Attachments under measurement (`make bench` runs this after the delivery workloads):

- F1, uploads: a 25 MB file POSTed N times to a real server (multipart, streamed from the
  client): throughput (MB/s, p50 and worst), server CPU per MB, and the server's RSS
  sampled every 5 ms during the uploads against its RSS before (flat when the body is
  streamed to disk, not held in memory). The ceiling: the same bytes copied to a file on
  the same disk by one `copyfileobj`.
- F2, images: a 12-megapixel photo through what an upload does to it (decode, re-encode
  without metadata, placeholder) and what the task worker does (the thumbnail), p50 and
  worst over N runs, in this process; and the same photo uploaded end to end.

    python -m bench.files [--runs 5] [--config embedded|scaleout] [--out DIR]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from bench.servers import database, run_server
from tests.live import new_user

MB = 1024 * 1024
FILE_BYTES = 25 * MB
CHUNK = 256 * 1024


def _body(boundary: str, data_path: Path, name: str) -> tuple[bytes, bytes, int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, len(head) + data_path.stat().st_size + len(tail)


def upload(base: str, token: str, data_path: Path, name: str) -> tuple[int, float]:
    """POST one file as multipart, streamed from disk; (status, seconds)."""
    boundary = uuid.uuid4().hex
    head, tail, length = _body(boundary, data_path, name)
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    started = time.perf_counter()
    conn.putrequest("POST", "/api/v1/uploads")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    conn.send(head)
    with data_path.open("rb") as source:
        while chunk := source.read(CHUNK):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    response.read()
    took = time.perf_counter() - started
    conn.close()
    return response.status, took


class RssSampler:
    """The server's RSS every 5 ms while running: its peak."""

    def __init__(self, read: Any) -> None:
        self.read, self.peak, self.samples = read, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def f1_uploads(config: str, runs: int, tmp: Path) -> dict[str, Any]:
    data = tmp / "file.pdf"
    with data.open("wb") as out:
        out.write(b"%PDF-1.7\n")
        left = FILE_BYTES - 9
        while left > 0:
            block = os.urandom(min(MB, left))
            out.write(block)
            left -= len(block)
    # The ceiling: the same bytes copied to a file on this disk.
    copies = []
    for _ in range(runs):
        started = time.perf_counter()
        with data.open("rb") as source, (tmp / "copy").open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
            target.flush()
            os.fsync(target.fileno())
        copies.append(time.perf_counter() - started)
    with database(config) as db_env, run_server("linkup", config, db_env) as server:
        user = new_user(server.base(), "files")
        upload(server.base(), user["token"], data, "warm.pdf")  # imports, first request
        rss_before = server.rss_bytes()
        cpu_before = server.cpu_seconds()
        times = []
        with RssSampler(server.rss_bytes) as rss:
            for n in range(runs):
                status, took = upload(server.base(), user["token"], data, f"f{n}.pdf")
                assert status == 201, status
                times.append(took)
        cpu = server.cpu_seconds() - cpu_before
    mb = FILE_BYTES / MB
    return {
        "file_mb": mb,
        "runs": runs,
        "upload_mb_s_p50": mb / statistics.median(times),
        "upload_mb_s_worst": mb / max(times),
        "disk_copy_mb_s_p50": mb / statistics.median(copies),
        "server_cpu_ms_per_mb": 1000 * cpu / (mb * runs),
        "rss_before_mib": rss_before / MB,
        "rss_peak_mib": rss.peak / MB,
        "rss_growth_mib": (rss.peak - rss_before) / MB,
        "rss_samples": rss.samples,
    }


def f2_images(config: str, runs: int, tmp: Path) -> dict[str, Any]:
    from PIL import Image

    from linkup.core import media

    photo = Image.new("RGB", (4000, 3000))
    for x in range(0, 4000, 40):  # detail, so the encoders have work to do
        photo.paste((x % 256, (3 * x) % 256, 90), (x, 0, x + 20, 3000))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    data = out.getvalue()
    cleaning, thumbs = [], []
    for _ in range(runs):
        started = time.perf_counter()
        media.picture(data, "image/jpeg", 40_000_000)
        cleaning.append(time.perf_counter() - started)
        started = time.perf_counter()
        media.thumbnail(data, 320, 40_000_000)
        thumbs.append(time.perf_counter() - started)
    path = tmp / "photo.jpg"
    path.write_bytes(data)
    with database(config) as db_env, run_server("linkup", config, db_env) as server:
        user = new_user(server.base(), "photos")
        upload(server.base(), user["token"], path, "warm.jpg")
        ends = []
        for n in range(runs):
            status, took = upload(server.base(), user["token"], path, f"p{n}.jpg")
            assert status == 201, status
            ends.append(took)
    return {
        "photo": "4000x3000 JPEG",
        "photo_mb": len(data) / MB,
        "clean_ms_p50": 1000 * statistics.median(cleaning),
        "clean_ms_worst": 1000 * max(cleaning),
        "thumbnail_ms_p50": 1000 * statistics.median(thumbs),
        "thumbnail_ms_worst": 1000 * max(thumbs),
        "upload_ms_p50": 1000 * statistics.median(ends),
        "upload_ms_worst": 1000 * max(ends),
    }


def table(results: dict[str, Any]) -> str:
    f1, f2 = results["F1"], results["F2"]
    return "\n".join(
        [
            f"F1 uploads ({results['config']}, {f1['runs']} x {f1['file_mb']:.0f} MB):",
            f"  throughput p50 {f1['upload_mb_s_p50']:.0f} MB/s,"
            f" worst {f1['upload_mb_s_worst']:.0f} MB/s;"
            f" ceiling (disk copy) {f1['disk_copy_mb_s_p50']:.0f} MB/s"
            f" = {f1['upload_mb_s_p50'] / f1['disk_copy_mb_s_p50']:.2f}x of it",
            f"  server CPU {f1['server_cpu_ms_per_mb']:.1f} ms per MB;"
            f" RSS {f1['rss_before_mib']:.0f} MiB before, peak {f1['rss_peak_mib']:.0f} MiB"
            f" (+{f1['rss_growth_mib']:.1f} MiB for a {f1['file_mb']:.0f} MB body,"
            f" {f1['rss_samples']} samples)",
            f"F2 images ({f2['photo']}, {f2['photo_mb']:.1f} MB):",
            f"  cleaning (decode, re-encode, placeholder) p50 {f2['clean_ms_p50']:.0f} ms,"
            f" worst {f2['clean_ms_worst']:.0f} ms; thumbnail p50 {f2['thumbnail_ms_p50']:.0f} ms,"
            f" worst {f2['thumbnail_ms_worst']:.0f} ms",
            f"  upload end to end p50 {f2['upload_ms_p50']:.0f} ms,"
            f" worst {f2['upload_ms_worst']:.0f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", choices=["embedded", "scaleout"], default="embedded")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linkup-bench-files-") as folder:
        tmp = Path(folder)
        results = {
            "config": args.config,
            "F1": f1_uploads(args.config, args.runs, tmp),
            "F2": f2_images(args.config, args.runs, tmp),
        }
    print(table(results))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "files.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

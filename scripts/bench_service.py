"""Benchmark: the web service's latency per request and its throughput, on loopback.

Starts ``singerid serve`` in its own process against a home (``--home``, or one built here
with the CLI: synth-corpus, train --recipe paper, embed-corpus, build-index), then measures
  - one client, one request at a time: latency of POST /identify (p50, p95, mean) and of GET /health
    (the HTTP and framework cost alone);
  - ``--clients`` clients at once (threads, one HTTP connection each): requests per second and latency.
The query songs are the corpus's test songs (``--seconds`` long, mp3), uploaded whole with every
request. The clients run in this process and share the machine's cores with the server, as
on any single host; server CPU seconds per request are reported too (the figure least
disturbed by other jobs on a shared machine). Prints a table and writes JSON (last stdout line
= JSON summary).

Usage: python scripts/bench_service.py [--quick] [--home H --songs DIR] [--clients 10]
                                      [--json-out bench-out/service.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

AUDIO_SUFFIXES = (".mp3", ".flac", ".wav", ".ogg")


def cli(*args: str) -> None:
    """Run one ``singerid`` command quietly; raise with its output if it fails."""
    env = {**os.environ, "SINGERID_NO_PROGRESS": "1"}
    done = subprocess.run([sys.executable, "-m", "singerid", "-q", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"singerid {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def build_home(root: Path, *, singers: int, seconds: float, epochs: int) -> tuple[Path, list[Path]]:
    """A small trained, indexed home from a synthetic corpus; returns (home, test songs)."""
    corpus, home = root / "corpus", root / "home"
    t0 = time.perf_counter()
    cli("synth-corpus", str(corpus), "--singers", str(singers), "--albums", "3", "--songs-per-album", "2",
        "--seconds", str(seconds), "--seed", "0")
    cli("train", str(corpus), "--home", str(home), "--recipe", "paper", "--epochs", str(epochs), "--batch-size", "32")
    cli("embed-corpus", str(corpus), "--home", str(home), "--split", "train")
    cli("build-index", "--home", str(home))
    print(f"built a home of {singers} singers in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return home, test_songs(corpus)


def test_songs(corpus: Path) -> list[Path]:
    """The corpus's test songs (its lists/ file when there is one, else every song)."""
    listed = sorted(corpus.glob("lists/*tst-tracks.list"))  # artist20 layout: the test split
    if listed:
        rel = [line.strip() for line in listed[0].read_text().splitlines() if line.strip()]
        found = [p for r in rel for p in (corpus / "mp3s-32k").glob(r + ".*")]
        if found:
            return found
    return sorted(p for p in corpus.rglob("*") if p.suffix in AUDIO_SUFFIXES and "stems" not in p.parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "SINGERID_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "singerid", "-q", "serve", "--home", str(home), "--port", str(port),
                             "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"singerid serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("singerid serve did not answer /health within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def identify_once(client: httpx.Client, song: Path, payload: bytes, inside: list[float] | None = None) -> float:
    """Seconds for one POST /identify; appends to ``inside`` the seconds the library spent identifying."""
    t = time.perf_counter()
    response = client.post("/identify", files={"song": (song.name, payload, "audio/mpeg")})
    elapsed = time.perf_counter() - t
    if response.status_code != 200:
        raise RuntimeError(f"{song.name}: {response.status_code} {response.text}")
    if inside is not None:
        inside.append(response.json()["timings_s"]["total"])
    return elapsed


def summary(latencies: list[float], wall_s: float, inside: list[float] | None = None) -> dict[str, float]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    out = {"requests": len(ordered), "p50_ms": 1000 * pick(0.5), "p95_ms": 1000 * pick(0.95),
           "mean_ms": 1000 * statistics.fmean(ordered), "max_ms": 1000 * ordered[-1],
           "requests_per_s": len(ordered) / wall_s, "wall_s": wall_s}
    if inside:
        out["identify_mean_ms"] = 1000 * statistics.fmean(inside)  # the library's own time (decode to answer)
    return out


def run_single(base: str, songs: list[tuple[Path, bytes]], n: int) -> tuple[dict, dict]:
    with httpx.Client(base_url=base, timeout=300) as client:
        for song, payload in songs[:3]:  # warm-up: first decode, first forward pass, connection
            identify_once(client, song, payload)
        t0 = time.perf_counter()
        inside: list[float] = []
        lat = [identify_once(client, *songs[i % len(songs)], inside) for i in range(n)]
        identify = summary(lat, time.perf_counter() - t0, inside)
        t0 = time.perf_counter()
        health = []
        for _ in range(n):
            t = time.perf_counter()
            client.get("/health").raise_for_status()
            health.append(time.perf_counter() - t)
        return identify, summary(health, time.perf_counter() - t0)


def run_concurrent(base: str, songs: list[tuple[Path, bytes]], clients: int, n_each: int) -> dict:
    latencies: list[float] = []
    inside: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def worker(w: int) -> None:
        with httpx.Client(base_url=base, timeout=300) as client:
            client.get("/health")
            start.wait()
            for i in range(n_each):
                try:
                    elapsed = identify_once(client, *songs[(w + i) % len(songs)], inside)
                except (RuntimeError, httpx.HTTPError) as exc:
                    with lock:
                        errors.append(str(exc))
                    continue
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    out = summary(latencies, time.perf_counter() - t0, inside) if latencies else {"requests": 0}
    return out | {"clients": clients, "errors": len(errors), "first_error": errors[0] if errors else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests and a smaller home (< 2 minutes)")
    ap.add_argument("--home", type=Path, help="an existing home (default: build one)")
    ap.add_argument("--songs", type=Path, help="folder of query songs (default: the built corpus's test songs)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the songs of a built corpus")
    ap.add_argument("--clients", type=int, default=10, help="concurrent clients")
    ap.add_argument("--requests", type=int, help="single-client requests (default 20 quick, 100 full)")
    ap.add_argument("--requests-per-client", type=int, help="concurrent requests per client (default 6 quick, 20 full)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="server torch threads")
    ap.add_argument("--json-out", type=Path, default=Path("bench-out/service.json"))
    args = ap.parse_args()
    n_single = args.requests or (20 if args.quick else 100)
    n_each = args.requests_per_client or (6 if args.quick else 20)

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        if args.home is None:
            home, songs = build_home(Path(tmp), singers=4 if args.quick else 8, seconds=args.seconds,
                                     epochs=2 if args.quick else 5)
        else:
            home = args.home
            if args.songs is None:
                ap.error("--home needs --songs (a folder of query songs)")
            songs = []
        if args.songs is not None:
            songs = sorted(p for p in args.songs.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not songs:
            raise SystemExit("no query songs found")
        payloads = [(p, p.read_bytes()) for p in songs]
        port = free_port()
        server = start_server(home, port, args.threads)
        base = f"http://127.0.0.1:{port}"
        try:
            info = httpx.get(f"{base}/health", timeout=30).json()
            cpu0 = cpu_seconds(server.pid)
            single, health = run_single(base, payloads, n_single)
            cpu1 = cpu_seconds(server.pid)
            concurrent = run_concurrent(base, payloads, args.clients, n_each)
            cpu2 = cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    single["server_cpu_s_per_request"] = (cpu1 - cpu0) / (n_single + 3)  # with warm-up; /health costs ~nothing
    concurrent["server_cpu_s_per_request"] = (cpu2 - cpu1) / max(1, concurrent["requests"])
    song_mb = statistics.fmean(len(b) for _, b in payloads) / 2**20
    result = {"benchmark": "service", "quick": args.quick, "cpu_cores": os.cpu_count(), "server_threads": args.threads,
              "singers": info["singers"], "vectors": info["vectors"], "model": info["model"]["kind"],
              "song_mb": round(song_mb, 3), "songs": len(payloads),
              "identify_single_client": _rounded(single), "health_single_client": _rounded(health),
              "identify_concurrent": _rounded(concurrent)}
    print_table(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def _rounded(d: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def print_table(r: dict) -> None:
    print(f"singerid serve on loopback: {r['singers']} singers, {r['vectors']:,} vectors, model {r['model']}, "
          f"{r['songs']} query songs of {r['song_mb']:.2f} MB, {r['cpu_cores']} cores, "
          f"server threads {r['server_threads']}")
    print(f"{'run':<34}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'req/s':>8}{'CPU s/req':>10}"
          f"{'identify ms':>12}")
    rows = (("POST /identify, 1 client", r["identify_single_client"]),
            ("GET /health, 1 client", r["health_single_client"]),
            (f"POST /identify, {r['identify_concurrent'].get('clients')} clients", r["identify_concurrent"]))
    for name, row in rows:
        cpu = row.get("server_cpu_s_per_request")
        print(f"{name:<34}{row.get('requests', 0):>9}{row.get('p50_ms', 0):>9.1f}{row.get('p95_ms', 0):>9.1f}"
              f"{row.get('mean_ms', 0):>9.1f}{row.get('requests_per_s', 0):>8.1f}"
              f"{'' if cpu is None else f'{cpu:.3f}':>10}"
              f"{'' if 'identify_mean_ms' not in row else format(row['identify_mean_ms'], '.1f'):>12}")
    print("identify ms: mean time inside Identifier.identify (decode, features, embed, search, vote); "
          "the rest of the latency is upload, HTTP and waiting for a slot")
    if r["identify_concurrent"].get("errors"):
        print(f"errors under load: {r['identify_concurrent']['errors']} ({r['identify_concurrent']['first_error']})")


if __name__ == "__main__":
    main()

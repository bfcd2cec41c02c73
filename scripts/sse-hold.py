#!/usr/bin/env python3
"""SSE streams held per process, and their memory (docs/BENCHMARKS.md, "SSE streams held").

Starts a fresh embedded node (the binary given), makes one user in a workspace with a few
channels, opens N `GET /v1/stream` connections on raw sockets (each read until its `ready`
event, so every stream is registered), reads the node's resident memory (VmRSS) before and
after (per stream: the growth from the half-way point to all N, which leaves the
process's own start-up growth out), checks that one posted message reaches every stream, and stops the node. Repeats for
--runs runs and prints each run and the median and spread of the memory per stream, as JSON.

    scripts/sse-hold.py --binary target/release/chorus --streams 5000 --runs 3
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock, marker, buffers, deadline):
    """Reads from sock until its buffer holds marker (bytes)."""
    key = sock.fileno()
    while marker not in buffers[key]:
        if time.time() > deadline:
            raise RuntimeError("timed out waiting for " + marker.decode())
        sock.settimeout(max(0.1, deadline - time.time()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk or buffers[key].startswith(b"HTTP/1.1 5"):
            raise RuntimeError("stream closed: " + buffers[key][-300:].decode(errors="replace"))
        buffers[key] += chunk


def one_run(binary, streams, channels):
    data = tempfile.mkdtemp(prefix="sse-hold-")
    api, ws = free_port(), free_port()
    env = dict(os.environ, RUST_LOG="warn")
    node = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--api-addr", f"127.0.0.1:{api}",
         "--ws-addr", f"127.0.0.1:{ws}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{api}"
    socks = []
    try:
        for _ in range(300):
            try:
                call(base, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        email = "hold@example.com"
        call(base, "POST", "/v1/auth/register", body={
            "email": email, "password": "correct horse battery", "display_name": "hold"})
        token = call(base, "POST", "/v1/auth/login", body={
            "email": email, "password": "correct horse battery"})["access_token"]
        workspace = call(base, "POST", "/v1/workspaces", token, {"name": "hold"})["id"]
        channel_ids = [
            call(base, "POST", f"/v1/workspaces/{workspace}/channels", token,
                 {"name": f"c{n}"})["id"]
            for n in range(channels)
        ]
        time.sleep(1)
        before = rss_kib(node.pid)
        request = (f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode()
        buffers = {}
        started = time.time()
        # In waves, each read to its `ready` before the next: a burst beyond the API's
        # max_concurrent_requests would be shed (503), which is not what this measures.
        wave = 100
        half = None
        while len(socks) < streams:
            if half is None and len(socks) >= streams // 2:
                time.sleep(1)
                half = (len(socks), rss_kib(node.pid))
            opening = []
            for _ in range(min(wave, streams - len(socks))):
                sock = socket.create_connection(("127.0.0.1", api))
                sock.sendall(request)
                opening.append(sock)
                buffers[sock.fileno()] = b""
            deadline = time.time() + 120
            for sock in opening:
                read_until(sock, b"event: ready", buffers, deadline)
            socks.extend(opening)
        opened_s = time.time() - started
        time.sleep(1)
        after = rss_kib(node.pid)
        # Every stream gets a message posted now.
        call(base, "POST", f"/v1/channels/{channel_ids[0]}/messages", token, {"text": "to all"})
        started = time.time()
        for sock in socks:
            read_until(sock, b"event: message", buffers, time.time() + 60)
        fanout_s = time.time() - started
        return {
            "streams": streams,
            "channels_per_stream": channels,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_half_kib": half[1],
            # Between half and all: the process's own start-up growth cancels out.
            "kib_per_stream": round((after - half[1]) / (streams - half[0]), 2),
            "kib_per_stream_from_start": round((after - before) / streams, 2),
            "open_seconds": round(opened_s, 2),
            "one_message_to_all_seconds": round(fanout_s, 3),
        }
    finally:
        for sock in socks:
            sock.close()
        node.terminate()
        node.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/chorus")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.binary, args.streams, args.channels) for _ in range(args.runs)]
    per = [run["kib_per_stream"] for run in runs]
    print(json.dumps({
        "runs": runs,
        "kib_per_stream_median": statistics.median(per),
        "kib_per_stream_min": min(per),
        "kib_per_stream_max": max(per),
    }, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""livetape vs nginx-rtmp, side by side on this machine (issue 5). Run through bench/compare.sh.

Every scenario starts a fresh server per run, alternates the two servers (A B A B ...), drives
both with the same load generator (`livetape bench publish`), meters the server's process tree
(utime+stime from /proc, peak RSS sampled every 0.25 s), checks every recorded file with ffprobe
packet-exact against what the publisher sent, and prints medians and the ratio livetape/nginx.

Scenarios (names for --only):
  load      N real-time streams recording FLV (and MP4 for livetape): CPU-s per stream-minute,
            peak RSS, files valid/complete, end -> callback latency
  fast      one publisher as fast as possible: MB/s and CPU-s per GB
  callbacks 200 streams ending together: publisher unpublish -> callback p50/p99
  query     Live_Tape_GetFilelist and /v1/recordings at 1 M files (livetape only, vs SQLite)
  playback  wrk with Range requests on recorded MP4s: livetape /vod vs nginx static

Standard library only; needs ffprobe, nginx + libnginx-mod-rtmp, wrk (bench/compare.sh checks).
"""
import argparse
import concurrent.futures
import http.server
import json
import os
import platform
import random
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
APP = "live"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- metering (/proc) ----------


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and all its descendants."""
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu(pid):
    """utime+stime (s) of the process tree: threads are included in their process's figure."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def tree_rss_kb(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler:
    """Largest process-tree RSS, sampled every 0.25 s on a thread."""

    def __init__(self, pid):
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            self._stop.wait(0.25)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak_kb


# ---------------------------------------------------------------- callback sink -------------


class Sink:
    """HTTP receiver for both servers' callbacks; answers 200 and records the receive time."""

    def __init__(self):
        self.events, self.cond = [], threading.Condition()
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                t = time.time() * 1000
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                ev = {"t_ms": t, "path": self.path}
                ctype = self.headers.get("Content-Type", "")
                try:
                    if "json" in ctype:
                        ev["json"] = json.loads(body)
                    else:
                        ev["form"] = dict(urllib.parse.parse_qsl(body.decode()))
                except ValueError:
                    ev["raw"] = body[:200]
                with sink.cond:
                    sink.events.append(ev)
                    sink.cond.notify_all()

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # 200 streams ending at once must not overflow the backlog

        self.server = S(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def clear(self):
        with self.cond:
            self.events = []

    def wait(self, pred, count, timeout):
        """Waits until `count` events satisfy `pred`; returns those events."""
        end = time.time() + timeout
        with self.cond:
            while True:
                got = [e for e in self.events if pred(e)]
                if len(got) >= count or time.time() >= end:
                    return got
                self.cond.wait(max(0.0, min(1.0, end - time.time())))


# ---------------------------------------------------------------- servers -------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Livetape:
    name = "livetape"

    def __init__(self, binary, root, sink, fmt="flv"):
        self.binary, self.root, self.sink, self.fmt = binary, root, sink, fmt
        self.data = os.path.join(root, "data")
        self.record_dir = os.path.join(self.data, "records")

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        cfg = os.path.join(self.root, "livetape.toml")
        with open(cfg, "w") as f:
            f.write(
                f"""[server]
rtmp_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
data_dir = "{self.data}"
[[record_template]]
name = "default"
formats = ["{self.fmt}"]
interval_s = 7200
[[callback_template]]
name = "default"
key = "bench"
stream_end_url = "{self.sink.url}/tencent"
record_url = "{self.sink.url}/tencent"
[[callback_rule]]
app = "*"
template = "default"
# Like-for-like with nginx-rtmp, which keeps no GOP for new viewers either.
[live]
gop_cache = false
"""
            )
        self.log = open(os.path.join(self.root, "livetape.log"), "w")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", cfg],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "RUST_LOG": os.environ.get("BENCH_LIVETAPE_LOG", "warn")},
        )
        line = self.proc.stdout.readline().split()  # "livetape: rtmp://ADDR http://ADDR"
        if len(line) != 3:
            raise RuntimeError(f"livetape did not start; see {self.log.name}")
        self.rtmp = line[1] + "/" + APP
        self.http = line[2]
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()

    @staticmethod
    def end_event(ev):  # the "recording finished" callback -> stream name
        j = ev.get("json") or {}
        return j.get("stream_id") if j.get("event_type") == 100 else None

    @staticmethod
    def push_end_event(ev):
        j = ev.get("json") or {}
        return j.get("stream_id") if j.get("event_type") == 0 else None

    def files_of(self, stream):
        d = os.path.join(self.record_dir, APP, stream)
        out = []
        for dirpath, _, names in os.walk(d):
            out += [os.path.join(dirpath, n) for n in names]
        return out


class Nginx:
    """Debian nginx + libnginx-mod-rtmp, a private instance (own prefix, loopback only)."""

    name = "nginx"

    def __init__(self, root, sink, files_root=None):
        self.root, self.sink = root, sink
        self.record_dir = os.path.join(root, "rec")
        self.files_root = files_root or self.record_dir  # what /files/ serves (playback)

    def start(self):
        for d in ("logs", "tmp", "rec"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        self.rtmp_port, self.http_port = free_port(), free_port()
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = os.path.join(self.root, "nginx.conf")
        p = self.root
        with open(conf, "w") as f:
            f.write(
                f"""load_module {NGINX_MODULE};
{user}
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 4096; }}
rtmp {{ server {{
    listen 127.0.0.1:{self.rtmp_port}; chunk_size 4096;
    application {APP} {{
        live on;
        record all; record_path {self.record_dir};
        record_unique on; record_append off;
        on_record_done {self.sink.url}/on_record_done;
    }} }} }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {p}/tmp/body; proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi; uwsgi_temp_path {p}/tmp/uwsgi; scgi_temp_path {p}/tmp/scgi;
    server {{ listen 127.0.0.1:{self.http_port};
        location /files/ {{ alias {self.files_root}/; }} }} }}
"""
            )
        subprocess.run(["nginx", "-q", "-p", p, "-c", conf, "-e", f"{p}/logs/error.log"], check=True)
        pidfile = os.path.join(p, "nginx.pid")
        for _ in range(100):
            if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
                break
            time.sleep(0.05)
        self.pid = int(open(pidfile).read())
        for _ in range(100):  # the worker must be up before we meter the tree
            if len(tree(self.pid)) > 1:
                break
            time.sleep(0.05)
        self.rtmp = f"rtmp://127.0.0.1:{self.rtmp_port}/{APP}"
        self.http = f"http://127.0.0.1:{self.http_port}"

    def stop(self):
        pids = tree(self.pid)
        os.kill(self.pid, signal.SIGTERM)
        for _ in range(200):
            if not any(os.path.exists(f"/proc/{q}") for q in pids):
                return
            time.sleep(0.05)
        for q in pids:
            try:
                os.kill(q, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @staticmethod
    def end_event(ev):
        return (ev.get("form") or {}).get("name") if ev["path"].startswith("/on_record_done") else None

    push_end_event = end_event  # nginx has no separate push-end callback

    def files_of(self, stream):
        pre = stream + "-"  # record_unique: NAME-UNIXTIME.flv
        return [
            os.path.join(self.record_dir, n)
            for n in os.listdir(self.record_dir)
            if n.startswith(pre) and n[len(pre) : -4].isdigit()
        ]


# ---------------------------------------------------------------- checks --------------------


def probe(path):
    """(video packets, audio packets, error text) by ffprobe demuxing the whole file."""
    if os.path.isdir(path):
        return (0, 0, "directory")
    r = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_type,nb_read_packets", "-of", "json", path],
        capture_output=True, text=True,
    )
    v = a = 0
    try:
        for s in json.loads(r.stdout or "{}").get("streams", []):
            n = int(s.get("nb_read_packets") or 0)
            if s.get("codec_type") == "video":
                v += n
            elif s.get("codec_type") == "audio":
                a += n
    except ValueError:
        pass
    return (v, a, r.stderr.strip()[:200])


def check_files(server, report, exts):
    """Every stream must have exactly one file per format holding exactly what was sent."""
    jobs = []
    for s in report["per_stream"]:
        name = f"bench-{s['index']}"
        files = [f for f in server.files_of(name) if f.rsplit(".", 1)[-1] in exts]
        jobs.append((s, files))
    valid = complete = total = 0
    bad = []
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        results = pool.map(lambda j: (j[0], j[1], [probe(f) for f in j[1]]), jobs)
        for s, files, probes in results:
            total += len(files)
            valid += sum(1 for v, a, err in probes if not err and v and a)
            v = sum(p[0] for p in probes)
            a = sum(p[1] for p in probes)
            if v == s["video_frames"] and a == s["audio_frames"] and files:
                complete += 1
            elif len(bad) < 5:
                bad.append(f"bench-{s['index']}: files={len(files)} v={v}/{s['video_frames']} a={a}/{s['audio_frames']}")
    return {"files": total, "valid": valid, "complete": complete, "bad": bad}


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


# ---------------------------------------------------------------- runs ----------------------


class Bench:
    def __init__(self, args):
        self.args, self.sink = args, Sink()
        self.rows = []  # (scenario, metric, server, value)
        self.work = tempfile.mkdtemp(prefix="livetape-compare-")

    def fresh(self, kind, fmt="flv"):
        root = tempfile.mkdtemp(dir=self.work, prefix=f"{kind}-")
        return Livetape(self.args.livetape, root, self.sink, fmt) if kind == "livetape" else Nginx(root, self.sink)

    def publish(self, url, n, duration, pace, clip):
        cmd = [self.args.livetape, "bench", "publish", "--url", url, "--streams", str(n),
               "--file", clip, "--json", pace]
        if duration:
            cmd += ["--duration", str(duration)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode not in (0, 1) or not r.stdout.strip():
            raise RuntimeError(f"bench publish failed: {r.stderr[-500:]}")
        return json.loads(r.stdout)

    def record(self, scenario, server, **metrics):
        for k, v in metrics.items():
            self.rows.append((scenario, k, server, v))

    def load_run(self, kind, fmt, n, duration, scenario):
        srv = self.fresh(kind, fmt)
        srv.start()
        self.sink.clear()
        subprocess.run(["sync"])
        idle = tree_rss_kb(srv.pid)
        cpu0 = tree_cpu(srv.pid)
        rss = RssSampler(srv.pid)
        rep = self.publish(srv.rtmp, n, duration, "--realtime", self.args.clip)
        ends = self.sink.wait(lambda e: srv.end_event(e) is not None, rep["ok"], 120)
        time.sleep(0.5)
        cpu = tree_cpu(srv.pid) - cpu0
        peak = rss.stop()
        srv.stop()
        exts = {"flv"} if fmt == "flv" else {"mp4"}
        chk = check_files(srv, rep, exts)
        unpub = {f"bench-{s['index']}": s["unpublished_unix_ms"] for s in rep["per_stream"]}
        lat = [e["t_ms"] - unpub[srv.end_event(e)] for e in ends if srv.end_event(e) in unpub]
        media_min = rep["media_s_per_stream"] / 60
        res = dict(
            cpu_s=cpu,
            cpu_per_stream_min=cpu / (n * media_min),
            idle_rss_mb=idle / 1024,
            peak_rss_mb=peak / 1024,
            rss_per_stream_kb=(peak - idle) / n,
            ok=rep["ok"], failed=rep["failed"],
            files=chk["files"], valid=chk["valid"], complete=chk["complete"],
            callbacks=len(ends),
            cb_p50_ms=pct(lat, 50), cb_p99_ms=pct(lat, 99),
        )
        log(f"  {scenario} {kind}: " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))
        if chk["bad"]:
            log("   incomplete:", "; ".join(chk["bad"]))
        if rep["errors"]:
            log("   publish errors:", "; ".join(rep["errors"][:5]))
        self.record(scenario, kind, **res)
        if not self.args.keep:
            shutil.rmtree(srv.root, ignore_errors=True)
        return srv

    def scenario_load(self):
        for spec in self.args.load:
            fmt, n, dur = spec.split(":")
            n, dur = int(n), int(dur)
            scen = f"load {fmt} N={n} {dur}s"
            kinds = ["livetape", "nginx"] if fmt == "flv" and n <= self.args.nginx_max else ["livetape"]
            kinds = [k for k in kinds if k in self.args.servers]
            log(f"[{scen}] {self.args.rounds} rounds of {'/'.join(kinds)}")
            for r in range(self.args.rounds):
                for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                    self.load_run(kind, fmt, n, dur, scen)

    def scenario_fast(self):
        scen = f"fast 1 stream {self.args.fast_s}s of media"
        log(f"[{scen}]")
        for r in range(self.args.rounds):
            for kind in (["livetape", "nginx"] if r % 2 == 0 else ["nginx", "livetape"]):
                srv = self.fresh(kind)
                srv.start()
                self.sink.clear()
                subprocess.run(["sync"])
                cpu0 = tree_cpu(srv.pid)
                t0 = time.time() * 1000
                rep = self.publish(srv.rtmp, 1, self.args.fast_s, "--fast", self.args.clip)
                t_unpub = rep["per_stream"][0]["unpublished_unix_ms"] if rep["per_stream"] else t0
                ends = self.sink.wait(lambda e: srv.end_event(e) is not None, 1, 120)
                cpu = tree_cpu(srv.pid) - cpu0
                srv.stop()
                files = srv.files_of("bench-0")
                size = sum(os.path.getsize(f) for f in files)
                t_cb = ends[0]["t_ms"] if ends else float("nan")
                chk = check_files(srv, rep, {"flv"})
                res = dict(
                    mb=size / 1e6,
                    ingest_mb_s=size / 1e6 / ((t_unpub - t0) / 1000),
                    until_callback_mb_s=size / 1e6 / ((t_cb - t0) / 1000),
                    cpu_s_per_gb=cpu / (size / 1e9),
                    ok=float(rep["ok"]),
                    complete=float(chk["complete"]),
                )
                log(f"  {kind}: " + " ".join(f"{k}={v:.2f}" for k, v in res.items()))
                self.record(scen, kind, **res)
                shutil.rmtree(srv.root, ignore_errors=True)

    def scenario_callbacks(self):
        n = self.args.cb_streams
        scen = f"callbacks {n} streams ending together"
        log(f"[{scen}]")
        for r in range(self.args.rounds):
            for kind in (["livetape", "nginx"] if r % 2 == 0 else ["nginx", "livetape"]):
                srv = self.fresh(kind)
                srv.start()
                self.sink.clear()
                rep = self.publish(srv.rtmp, n, 10, "--realtime", self.args.short_clip)
                ends = self.sink.wait(lambda e: srv.end_event(e) is not None, rep["ok"], 60)
                pushes = self.sink.wait(lambda e: srv.push_end_event(e) is not None, rep["ok"], 10)
                srv.stop()
                unpub = {f"bench-{s['index']}": s["unpublished_unix_ms"] for s in rep["per_stream"]}
                spread = (max(unpub.values()) - min(unpub.values())) if unpub else 0
                lat = [e["t_ms"] - unpub[srv.end_event(e)] for e in ends if srv.end_event(e) in unpub]
                lat0 = [e["t_ms"] - unpub[srv.push_end_event(e)] for e in pushes if srv.push_end_event(e) in unpub]
                res = dict(
                    ends_spread_ms=float(spread),
                    callbacks=len(ends),
                    file_cb_p50_ms=pct(lat, 50), file_cb_p99_ms=pct(lat, 99), file_cb_max_ms=max(lat or [float("nan")]),
                    push_end_cb_p50_ms=pct(lat0, 50), push_end_cb_p99_ms=pct(lat0, 99),
                )
                log(f"  {kind}: " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))
                self.record(scen, kind, **res)
                if not self.args.keep:
                    shutil.rmtree(srv.root, ignore_errors=True)
                else:
                    log(f"  kept {srv.root}")

    def scenario_query(self):
        scen = f"query {self.args.query_files} files"
        log(f"[{scen}]")
        root = tempfile.mkdtemp(dir=self.work, prefix="query-")
        data = os.path.join(root, "data")
        os.makedirs(data)
        subprocess.run([self.args.livetape, "bench", "seed-catalog", "--db", os.path.join(data, "catalog.db"),
                        "--files", str(self.args.query_files)], check=True, stdout=subprocess.DEVNULL)
        srv = Livetape(self.args.livetape, root, self.sink)
        srv.start()
        r = subprocess.run([self.args.livetape, "bench", "query", "--url", srv.http,
                            "--db", os.path.join(data, "catalog.db"), "--requests",
                            str(self.args.query_requests), "--concurrency", "4", "--json"],
                           capture_output=True, text=True)
        srv.stop()
        if r.returncode != 0:
            log("  bench query failed:", r.stderr[-400:])
            return
        for q in json.loads(r.stdout)["cases"]:
            name = f"{scen}: {q['case']}"
            for side, who in (("server", "livetape"), ("floor", "sqlite")):
                self.record(name, who, p50_ms=q[side]["p50_us"] / 1000, p99_ms=q[side]["p99_us"] / 1000)
            log(f"  {q['case']}: server p50/p99 {q['server']['p50_us']}/{q['server']['p99_us']} us, "
                f"sqlite {q['floor']['p50_us']}/{q['floor']['p99_us']} us, answers agree: {q['answers_agree']}")
            if not q["answers_agree"]:
                self.record(name, "livetape", disagree=1.0)
        shutil.rmtree(root, ignore_errors=True)

    def scenario_playback(self):
        n = self.args.play_files
        scen = f"playback wrk Range 1MiB, {n} MP4s"
        log(f"[{scen}]")
        # Recordings made by livetape itself; nginx serves the very same files statically.
        lt = self.fresh("livetape", "mp4")
        lt.start()
        self.sink.clear()
        rep = self.publish(lt.rtmp, n, None, "--fast", self.args.clip)
        self.sink.wait(lambda e: lt.end_event(e) is not None, rep["ok"], 60)
        recs = json.load(urllib.request.urlopen(f"{lt.http}/v1/recordings?page_size=100"))["recordings"]
        lt.stop()
        rels, urls_lt = [], []
        for rec in recs:
            urls_lt.append(urllib.parse.urlparse(rec["video_url"]).path)
        for dirpath, _, names in os.walk(lt.record_dir):
            rels += [os.path.relpath(os.path.join(dirpath, x), lt.record_dir) for x in names if x.endswith(".mp4")]
        size = os.path.getsize(os.path.join(lt.record_dir, rels[0]))
        for r in range(self.args.rounds):
            for kind in (["livetape", "nginx"] if r % 2 == 0 else ["nginx", "livetape"]):
                if kind == "livetape":
                    srv = Livetape(self.args.livetape, lt.root, self.sink, "mp4")
                    srv.start()
                    paths = urls_lt
                else:
                    srv = Nginx(tempfile.mkdtemp(dir=self.work, prefix="nginx-"), self.sink, lt.record_dir)
                    srv.start()
                    paths = ["/files/" + urllib.parse.quote(p) for p in rels]
                res = wrk(srv.http, paths, size, self.args.wrk_s, self.work)
                srv.stop()
                log(f"  {kind}: " + " ".join(f"{k}={v:.1f}" for k, v in res.items()))
                self.record(scen, kind, **res)
        shutil.rmtree(lt.root, ignore_errors=True)

    # ------------------------------------------------------------ report --------------------

    def table(self):
        out = [f"# livetape vs nginx-rtmp — {time.strftime('%Y-%m-%d %H:%M')}",
               "",
               f"machine: {os.cpu_count()} cores, {platform.machine()}, kernel {platform.release()}; "
               f"rounds per scenario: {self.args.rounds} (alternating); values are medians.",
               "",
               "| scenario | metric | livetape | nginx / sqlite | ratio |",
               "|---|---|---|---|---|"]
        keys = []
        for s, m, _, _ in self.rows:
            if (s, m) not in keys:
                keys.append((s, m))
        med = {}
        for s, m, srv, v in self.rows:
            med.setdefault((s, m, srv), []).append(v)
        summary = {}
        for s, m in keys:
            a = med.get((s, m, "livetape"), [])
            b = med.get((s, m, "nginx"), []) or med.get((s, m, "sqlite"), [])
            ma = statistics.median(a) if a else None
            mb = statistics.median(b) if b else None
            ratio = f"{ma / mb:.2f}" if ma is not None and mb else ""
            fmtv = lambda x: "" if x is None else (f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}")
            out.append(f"| {s} | {m} | {fmtv(ma)} | {fmtv(mb)} | {ratio} |")
            summary[f"{s} | {m}"] = {"livetape": a, "peer": b}
        return "\n".join(out), summary


def wrk(base, paths, size, seconds, work):
    """wrk, 2 threads x 32 connections, each request a random 1 MiB Range of a random file."""
    script = os.path.join(work, f"range-{random.randrange(1 << 30)}.lua")
    chunk = 1 << 20
    with open(script, "w") as f:
        f.write("paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n")
        f.write(f"""size = {size}
math.randomseed(7)
request = function()
  local p = paths[math.random(#paths)]
  local off = math.random(0, size - {chunk} - 1)
  return wrk.format("GET", p, {{["Range"] = "bytes=" .. off .. "-" .. (off + {chunk} - 1)}})
end
done = function(summary, latency, requests)
  io.write(string.format("JSON %d %d %d %d %d %d\\n", summary.requests, summary.bytes,
    summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
""")
    r = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", script, base], capture_output=True, text=True)
    line = [x for x in r.stdout.splitlines() if x.startswith("JSON ")]
    if not line:
        raise RuntimeError(f"wrk failed: {r.stdout} {r.stderr}")
    req, byts, dur_us, p50, p99, errs = map(int, line[0].split()[1:])
    return {"req_s": req / (dur_us / 1e6), "mb_s": byts / 1e6 / (dur_us / 1e6),
            "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "errors": float(errs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--livetape", required=True, help="path to the release binary")
    ap.add_argument("--only", default="load,fast,callbacks,query,playback")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load", default="flv:100:60,flv:200:60,flv:500:30,mp4:100:60,flv:1000:30",
                    help="FORMAT:N:SECONDS,... (nginx runs FLV loads up to --nginx-max streams)")
    ap.add_argument("--nginx-max", type=int, default=500)
    ap.add_argument("--servers", default="livetape,nginx", help="load scenario: which servers to run")
    ap.add_argument("--clip", required=True, help="the 60 s clip (bench/compare.sh generates it)")
    ap.add_argument("--short-clip", required=True, help="the 10 s clip")
    ap.add_argument("--fast-s", type=int, default=3000, help="media seconds in the fast run (clip looped)")
    ap.add_argument("--cb-streams", type=int, default=200)
    ap.add_argument("--query-files", type=int, default=1_000_000)
    ap.add_argument("--query-requests", type=int, default=2000)
    ap.add_argument("--play-files", type=int, default=8)
    ap.add_argument("--wrk-s", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep recordings of load runs")
    ap.add_argument("--out", default="", help="also write the table (markdown) and raw rows (json) here")
    args = ap.parse_args()
    args.load = [x for x in args.load.split(",") if x]
    b = Bench(args)
    try:
        for s in args.only.split(","):
            getattr(b, f"scenario_{s}")()
    finally:
        if not args.keep:
            shutil.rmtree(b.work, ignore_errors=True)
    table, summary = b.table()
    print(table)
    # Health, not speed: a run where livetape lost a stream, a packet or a callback fails.
    problems = []
    for scen, metric, srv, v in b.rows:
        if srv != "livetape":
            continue
        ok = {m: x for sc, m, sv, x in b.rows if sc == scen and sv == srv}
        if metric == "disagree":
            problems.append(f"{scen}: the server's answers differ from SQLite's")
        if metric == "failed" and v > 0:
            problems.append(f"{scen}: {v} publishes failed")
        if metric == "complete" and "ok" in ok and v < ok["ok"]:
            problems.append(f"{scen}: {v} of {ok['ok']} streams recorded packet-exact")
        if metric == "callbacks" and "ok" in ok and v < ok["ok"]:
            problems.append(f"{scen}: {v} of {ok['ok']} callbacks")
    for p in dict.fromkeys(problems):
        log("PROBLEM:", p)
    if args.out:
        with open(args.out + ".md", "w") as f:
            f.write(table + "\n")
        with open(args.out + ".json", "w") as f:
            json.dump({"rows": b.rows, "summary": summary}, f, indent=1)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

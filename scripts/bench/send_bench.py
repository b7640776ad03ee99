#!/usr/bin/env python3
"""The measuring half of scripts/bench-send: each subcommand is one phase and writes its figures as
JSON (--json), which `summary` turns into the table. CPU is accounted from /proc for the
processes named with --watch NAME=PID, for this process (or wrk, its child) as the client, and
for the machine: what is busy but none of them is other work.

  send_bench.py wrk     --json F --raw F --watch server=PID -- wrk …   wrk with scripts/bench/common.lua
  send_bench.py preload --json F --base URL --workspace WS --auth "Basic …" --customers N --batch B
  send_bench.py load    --json F --raw F --base URL --workspace WS --key-id K --secret S --mode accept|e2e
                        --batch B --connections C --duration 10s [--rate MSGS_PER_S] [--channel sms|email|mixed]
                        [--customers N] [--prefix P] [--double http://127.0.0.1:CONTROL] [--drain-timeout S]
  send_bench.py summary --dir LOGS --anomalies FILE --header TEXT…    prints the table; exit 2 on anomalies

`load` signs every request as the main data center does (X-Domicile-Key, X-Domicile-Timestamp,
X-Domicile-Signature: v1=hex(HMAC-SHA256(secret, timestamp \\n POST \\n path \\n body))), building
each batch and its signature just before it goes, with ids <prefix>-<batch>-<n> never reused.
Its connections are plain asyncio streams with HTTP/1.1 keep-alive. --rate 0 is a closed loop
(each connection sends its next batch when the answer to the last one is in); --rate R paces
batches to R messages a second over the connections. For e2e, after the load it polls the
double's /stats until it has every accepted message (or --drain-timeout, or 30 s without
progress), then fetches /records and measures accept → provider: the double's receipt time
minus the time this client had the 202 carrying the message (one monotonic clock).
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import resource
import subprocess
import sys
import time
from urllib.parse import urlsplit

HZ = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# --- CPU accounting ----------------------------------------------------------------------------

def process_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy, busy + v[3] + v[4]


class CPUWatch:
    """Cores used by each watched process, by the client and by anything else, over a window."""

    def __init__(self, watch):
        self.watch = watch
        self.started = time.monotonic()
        self.machine = machine_ticks()
        self.ticks = {name: process_ticks(pid) for name, pid in watch.items()}
        self.own = time.process_time()
        self.children = self.children_seconds()

    @staticmethod
    def children_seconds():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def stop(self):
        wall = time.monotonic() - self.started
        busy, total = machine_ticks()
        busy, total = busy - self.machine[0], total - self.machine[1]
        result = {}
        used = 0
        for name, pid in self.watch.items():
            ticks = process_ticks(pid) - self.ticks[name]
            used += ticks
            result[f"{name}_cores"] = round(ticks / HZ / wall, 2) if wall > 0 else 0
        client = (time.process_time() - self.own) + (self.children_seconds() - self.children)
        used += client * HZ
        result["client_cores"] = round(client / wall, 2) if wall > 0 else 0
        result["other_pct"] = round(100 * max(0, busy - used) / total) if total > 0 else 0
        result["cpu_window_s"] = round(wall, 3)
        return result


def parse_watch(values):
    watch = {}
    for value in values or []:
        name, _, pid = value.partition("=")
        watch[name] = int(pid)
    return watch


def seconds(text):
    match = re.fullmatch(r"([1-9][0-9]*)([smh]?)", text)
    if not match:
        raise SystemExit(f"send_bench: a duration looks like 15s, 1m or 20 (got {text!r})")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))]


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)


def say(text):
    print(f"==> {text}", file=sys.stderr, flush=True)


# --- a minimal HTTP/1.1 client -----------------------------------------------------------------

class SocketError(Exception):
    pass


class Connection:
    """One keep-alive connection; request() sends raw bytes and returns (status, body)."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader = self.writer = None

    async def request(self, raw):
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            self.writer.write(raw)
            return await asyncio.wait_for(self.read_response(), self.timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            self.close()
            raise SocketError(f"{type(error).__name__}: {error}") from error

    async def read_response(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if match:
            body = await self.reader.readexactly(int(match.group(1)))
        elif b"transfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def http_request(method, path, host, headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- wrk ---------------------------------------------------------------------------------------

def command_wrk(args):
    watch = CPUWatch(parse_watch(args.watch))
    with open(args.raw, "w") as out:
        status = subprocess.run(args.wrk, stdout=out, stderr=subprocess.STDOUT).returncode
    result = watch.stop()
    text = open(args.raw).read()
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    anomalies = []
    if status != 0 or not lines:
        anomalies.append(f"wrk failed or printed no RESULT line (see {args.raw})")
    else:
        for pair in lines[-1].split()[1:]:
            key, _, value = pair.partition("=")
            result[key] = float(value)
        sockets = sum(int(result[k]) for k in ("connect", "read", "write", "timeout"))
        result["sockerr"] = sockets
        if result["non200"] > 0 or result["wrk_non2xx"] > 0:
            statuses = " ".join(sorted(l[7:] for l in text.splitlines() if l.startswith("STATUS ")))
            anomalies.append(f"{int(result['non200'])} non-200 answers of {int(result['status_counted'])}; statuses: {statuses}")
        if sockets:
            anomalies.append(f"{sockets} socket errors")
        if result["requests"] == 0:
            anomalies.append("no request completed")
    result["anomalies"] = anomalies
    block = text[text.find("Running"):text.find("RESULT")] if "Running" in text else text
    sys.stderr.write("".join(f"    {line}\n" for line in block.splitlines()))
    write_json(args.json, result)


# --- preload -----------------------------------------------------------------------------------

FIRST = "Amira Omar Lina Yusuf Sara Karim Noor Hadi".split()
LAST = "Haddad Khalil Nasser Saleh Farouk Mansour Aziz".split()
CITY = ["Dubai", "Abu Dhabi", "Sharjah", "Riyadh", "Doha", "Muscat", "Cairo"]
PLAN = "free basic pro enterprise".split()
COUNTRY = "AE SA QA OM EG".split()
LANGUAGE = "ar en fr hi".split()


def customer(i):
    """Customer r-i with 10 attributes, e-mail and mobile among them (as scripts/bench-ingest's)."""
    return {"type": "customer", "customer_id": f"r-{i}", "attributes": {
        "email": f"r{i}-t0@example.com", "mobile": "+9715%08d" % ((i * 104729) % 100000000),
        "first_name": FIRST[i % 8], "last_name": LAST[i % 7], "city": CITY[i % 7], "plan": PLAN[(i + 1) % 4],
        "age": 18 + i % 60, "vip": i % 7 == 0, "country": COUNTRY[i % 5], "language": LANGUAGE[i % 4]}}


async def preload(args):
    client_keys = None
    if args.client_keys:
        global domicile_client
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
        import domicile_client
        client_keys = (domicile_client.read_key(os.path.join(args.client_keys, "brand.key")),
                       domicile_client.read_key(os.path.join(args.client_keys, "index.key")))
    url = urlsplit(args.base)
    path = f"/v1/transition/{args.workspace}"
    batches = [list(range(start, min(start + args.batch, args.customers + 1)))
               for start in range(1, args.customers + 1, args.batch)]
    created, failures = 0, []

    async def worker():
        nonlocal created
        connection = Connection(url.hostname, url.port, 60)
        while batches:
            ids = batches.pop()
            payload = {"type": "transition", "elements": [customer(i) for i in ids]}
            if client_keys:
                # Client mode: the brand's side seals every attribute (the reference encoder).
                payload = domicile_client.encrypt_payload(payload, args.workspace, *client_keys)
            body = json.dumps(payload).encode()
            try:
                status, answer = await connection.request(http_request(
                    "POST", path, url.netloc, [("Content-Type", "application/json"), ("Authorization", args.auth)], body))
            except SocketError as error:
                failures.append(f"r-{ids[0]}…: {error}")
                continue
            if status != 200:
                failures.append(f"r-{ids[0]}…: HTTP {status} {answer[:300].decode(errors='replace')}")
                continue
            created += json.loads(answer).get("created", 0)
        connection.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(4)))
    anomalies = []
    if failures:
        anomalies.append(f"{len(failures)} bulk requests failed, e.g. {failures[0]}")
    elif created != args.customers:
        anomalies.append(f"created {created} customers, expected {args.customers}")
    connection = Connection(url.hostname, url.port, 10)
    for i in (1, args.customers):
        try:
            status, _ = await connection.request(http_request(
                "GET", f"/v1/workspaces/{args.workspace}/customers/r-{i}", url.netloc, [("Authorization", args.auth)]))
        except SocketError as error:
            status = str(error)
        if status != 200:
            anomalies.append(f"GET customer r-{i} answered {status}")
    connection.close()
    seconds_taken = time.monotonic() - started
    say(f"preload: {created} customers r-1…r-{args.customers} in {seconds_taken:.1f} s")
    write_json(args.json, {"created": created, "seconds": round(seconds_taken, 2), "anomalies": anomalies})
    return 1 if anomalies else 0


# --- signed sends ------------------------------------------------------------------------------

SMS = ('{"message_id":"%s","customer_id":"r-%d","channel":"sms","campaign_id":"bench",'
       '"content":{"text":"Hi {{first_name}}, your code is {{code}}. It expires in 10 minutes."},"data":{"code":"%06d"}}')
EMAIL = ('{"message_id":"%s","customer_id":"r-%d","channel":"email","campaign_id":"bench",'
         '"content":{"subject":"{{first_name}}, order {{order}} is on its way",'
         '"text":"Hello {{first_name}},\\n\\nyour order {{order}} ships to {{city}} today.\\n",'
         '"html":"<p>Hello {{first_name}},</p><p>your order <b>{{order}}</b> ships to {{city}} today.</p>"},'
         '"data":{"order":"A-%d"}}')


class Load:
    def __init__(self, args):
        self.args = args
        url = urlsplit(args.base)
        self.host, self.port, self.netloc = url.hostname, url.port, url.netloc
        self.path = f"/v1/workspaces/{args.workspace}/messages"
        self.secret = args.secret.encode()
        self.next_batch = 0
        self.requests = []         # (batch, sent, answered, status, accepted, refused, duplicates)
        self.accept_time = {}      # batch -> monotonic time of its 202
        self.statuses = {}
        self.reasons = {}
        self.samples = []
        self.socket_errors = 0

    def body(self, batch):
        a, channel = self.args, self.args.channel
        parts = []
        for n in range(a.batch):
            serial = batch * a.batch + n
            message_id = f"{a.prefix}-{batch}-{n}"
            customer_number = (serial * 7919) % a.customers + 1
            kind = channel if channel != "mixed" else ("sms", "email")[serial % 2]
            parts.append((SMS if kind == "sms" else EMAIL) % (message_id, customer_number, serial % 1000000))
        return ('{"messages":[' + ",".join(parts) + "]}").encode()

    def signed(self, body):
        timestamp = str(int(time.time()))
        mac = hmac.new(self.secret, f"{timestamp}\nPOST\n{self.path}\n".encode() + body, hashlib.sha256).hexdigest()
        return http_request("POST", self.path, self.netloc, [
            ("Content-Type", "application/json"), ("X-Domicile-Key", self.args.key_id),
            ("X-Domicile-Timestamp", timestamp), ("X-Domicile-Signature", "v1=" + mac)], body)

    async def send(self, connection, batch):
        raw = self.signed(self.body(batch))
        sent = time.monotonic()
        try:
            status, answer = await connection.request(raw)
        except SocketError as error:
            self.socket_errors += 1
            if len(self.samples) < 3:
                self.samples.append(f"socket: {error}")
            return
        answered = time.monotonic()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        accepted = refused = duplicates = 0
        if status == 202:
            accepted = int(re.search(rb'"accepted":(\d+)', answer).group(1))
            refused = int(re.search(rb'"refused":(\d+)', answer).group(1))
            duplicates = answer.count(b'"duplicate":true')
            self.accept_time[batch] = answered
            if refused:
                for result in json.loads(answer)["results"]:
                    if not result["accepted"]:
                        reason = result.get("reason", "?")
                        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if (status != 202 or refused) and len(self.samples) < 3:
            self.samples.append(f"{status} {answer[:300].decode(errors='replace')}")
        self.requests.append((batch, sent, answered, status, accepted, refused, duplicates))

    async def worker(self, tickets, deadline):
        connection = Connection(self.host, self.port, self.args.timeout)
        while True:
            if tickets is None:
                if time.monotonic() >= deadline:
                    break
                batch = self.next_batch
                self.next_batch += 1
            else:
                batch = await tickets.get()
                if batch is None:
                    break
            await self.send(connection, batch)
        connection.close()

    async def pace(self, tickets, started, deadline):
        """Hands out one batch every batch/rate seconds until the deadline; counts how far behind."""
        interval = self.args.batch / self.args.rate
        batch, self.most_waiting = 0, 0
        while True:
            due = started + batch * interval
            if due >= deadline:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tickets.put_nowait(batch)
            self.most_waiting = max(self.most_waiting, tickets.qsize())
            batch += 1
        for _ in range(self.args.connections):
            tickets.put_nowait(None)

    async def run(self):
        a = self.args
        if a.mode == "e2e":
            self.baseline = json.loads(await self.control("/stats"))["distinct"]
        watch = CPUWatch(parse_watch(a.watch))
        started = time.monotonic()
        deadline = started + seconds(a.duration)
        tickets = asyncio.Queue() if a.rate > 0 else None
        tasks = [self.worker(tickets, deadline) for _ in range(a.connections)]
        if tickets is not None:
            tasks.append(self.pace(tickets, started, deadline))
        await asyncio.gather(*tasks)
        load_end = max([r[2] for r in self.requests], default=time.monotonic())
        # Paced, the last batch may be answered before the deadline: the load lasted until then.
        load_seconds = max(load_end, deadline if a.rate > 0 else load_end) - started
        result = self.load_figures(load_seconds)
        anomalies = self.load_anomalies(result)
        if a.mode == "e2e":
            receipts = await self.drain(result, anomalies)
            result.update(watch.stop())
            result.update(self.latency(receipts, started, load_end, result, anomalies))
        else:
            result.update(watch.stop())
            if a.double:
                held = json.loads(await self.control("/stats"))
                result["double_connections"], result["double_requests"] = held["connections"], held["requests"]
        result["anomalies"] = anomalies
        say(f"{a.mode} {a.channel}, batches of {a.batch}: {result['accepted']:,} accepted in {result['seconds']:.1f} s "
            f"({result['accepted_rps']:,.0f}/s, request p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms)"
            + (f"; delivered {result['delivered']:,} ({result['delivered_rps']:,.0f}/s), accept → provider p50 "
               f"{result['e2e_p50_ms']} ms, p99 {result['e2e_p99_ms']} ms" if a.mode == "e2e" else "")
            + f"; CPU server {result.get('server_cores')}, client {result['client_cores']}, double {result.get('double_cores', '-')}")
        with open(a.raw, "w") as f:
            f.write("batch\tsent\tanswered\tstatus\taccepted\trefused\tduplicates\n")
            f.writelines("%d\t%.6f\t%.6f\t%d\t%d\t%d\t%d\n" % r for r in sorted(self.requests))
        write_json(a.json, result)

    def load_figures(self, load_seconds):
        a = self.args
        latencies = sorted(r[2] - r[1] for r in self.requests)
        accepted = sum(r[4] for r in self.requests)
        result = {
            "mode": a.mode, "channel": a.channel, "batch": a.batch, "connections": a.connections, "rate": a.rate,
            "requests": len(self.requests), "seconds": round(load_seconds, 3),
            "rps": round(len(self.requests) / load_seconds, 1) if load_seconds > 0 else 0,
            "accepted": accepted, "accepted_rps": round(accepted / load_seconds, 1) if load_seconds > 0 else 0,
            "refused": sum(r[5] for r in self.requests), "duplicates": sum(r[6] for r in self.requests),
            "non202": sum(count for status, count in self.statuses.items() if status != 202),
            "statuses": {str(k): v for k, v in self.statuses.items()}, "reasons": self.reasons,
            "sockerr": self.socket_errors, "samples": self.samples,
            "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
            "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None,
        }
        if a.rate > 0:
            result["backlog_batches"] = self.most_waiting
        return result

    @staticmethod
    def load_anomalies(result):
        anomalies = []
        if result["non202"]:
            anomalies.append(f"{result['non202']} answers were not 202: {result['statuses']}")
        if result["sockerr"]:
            anomalies.append(f"{result['sockerr']} socket errors or timeouts")
        if result["refused"]:
            anomalies.append(f"{result['refused']} messages refused: {result['reasons']}")
        if result["duplicates"]:
            anomalies.append(f"{result['duplicates']} messages answered duplicate (a message id was reused)")
        if result["requests"] == 0:
            anomalies.append("no request completed")
        for sample in result["samples"]:
            anomalies.append(f"  e.g. {sample}")
        return anomalies

    async def control(self, path):
        url = urlsplit(self.args.double)
        connection = Connection(url.hostname, url.port, 30)
        try:
            status, body = await connection.request(http_request("GET", path, url.netloc))
        finally:
            connection.close()
        if status != 200:
            raise SocketError(f"the double answered {status} to {path}")
        return body

    async def drain(self, result, anomalies):
        """Waits until the double has every accepted message; returns its receipt lines."""
        expected = result["accepted"] - result["duplicates"]
        result["double_distinct_before"] = self.baseline
        drain_started = time.monotonic()
        progress_at, last_count = drain_started, -1
        while True:
            stats = json.loads(await self.control("/stats"))
            count = stats["distinct"] - self.baseline
            if count >= expected:
                break
            now = time.monotonic()
            if count != last_count:
                progress_at, last_count = now, count
            if now - progress_at > 30 or now - drain_started > self.args.drain_timeout:
                anomalies.append(f"the double got {count} of {expected} accepted messages; gave up waiting after "
                                 f"{now - drain_started:.0f} s ({'no progress for 30 s' if now - progress_at > 30 else 'drain timeout'})")
                break
            await asyncio.sleep(0.05)
        if stats["bad"]:
            anomalies.append(f"the double counted {stats['bad']} malformed or unrendered messages, e.g. {stats['bad_samples'][:1]}")
        result["double_bad"] = stats["bad"]
        result["double_connections"] = stats["connections"]
        records = await self.control("/records")
        with open(self.args.receipts, "wb") as f:
            f.write(records)
        return records.decode().splitlines()

    def latency(self, receipts, started, load_end, result, anomalies):
        prefix = self.args.prefix + "-"
        first_receipt, latencies, unknown, repeats = {}, [], 0, 0
        for line in receipts:
            message_id, _, at = line.partition(" ")
            if not message_id.startswith(prefix):
                continue
            if message_id in first_receipt:
                repeats += 1
                continue
            first_receipt[message_id] = at = float(at)
            accepted_at = self.accept_time.get(int(message_id.split("-")[-2]))
            if accepted_at is None:
                unknown += 1
            else:
                latencies.append(at - accepted_at)
        latencies.sort()
        delivered = len(first_receipt)
        last = max(first_receipt.values(), default=load_end)
        window = last - started
        undelivered = result["accepted"] - result["duplicates"] - (delivered - unknown)
        if unknown:
            anomalies.append(f"the double got {unknown} messages whose request was not answered 202")
        if undelivered > 0:
            anomalies.append(f"{undelivered} accepted messages never reached the provider double")
        ms = lambda p: round(1000 * percentile(latencies, p), 1) if latencies else None
        during = sum(1 for at in first_receipt.values() if at <= load_end)
        drain = last - load_end
        return {
            "delivered": delivered, "delivered_rps": round(delivered / window, 1) if window > 0 else 0,
            "delivery_window_s": round(window, 3), "drain_s": round(max(0.0, drain), 3),
            # While the load runs, deliveries share the server with accepts; after it, they have it alone.
            "delivered_during_load_rps": round(during / (load_end - started), 1) if load_end > started else 0,
            "delivered_in_drain_rps": round((delivered - during) / drain, 1) if drain > 0.5 else None,
            "undelivered": max(0, undelivered), "redeliveries": repeats,
            "e2e_p50_ms": ms(50), "e2e_p90_ms": ms(90), "e2e_p99_ms": ms(99), "e2e_max_ms": ms(100),
            "e2e_min_ms": round(1000 * latencies[0], 1) if latencies else None,
        }


def command_idle():
    """The machine's idle share over one second, in percent."""
    before = machine_ticks()
    time.sleep(1)
    after = machine_ticks()
    total = after[1] - before[1]
    print(round(100 * (total - (after[0] - before[0])) / total) if total > 0 else 0)


# --- summary -----------------------------------------------------------------------------------

def command_summary(args):
    phases = {}
    for name in ("health", "preload", "e2e-http", "e2e-smtp", "e2e-client", "accept-100", "accept-1000"):
        path = os.path.join(args.dir, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                phases[name] = json.load(f)
    health = phases.get("health", {}).get("rps")
    fmt = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    verdict = lambda ok: "MET" if ok else "MISSED"

    def cpu(p):
        if "server_cores" not in p:
            return "-"
        double = f" / {p['double_cores']:.2f}" if "double_cores" in p else " / -"
        return f"{p['server_cores']:.2f} / {p['client_cores']:.2f}{double} / {p['other_pct']}%"

    out = list(args.header) + [""]
    row = "{:<42} {:>10} {:>8} {:>9} {:>9} {:>10}  {:<36} {}"
    out.append(row.format("scenario", "msgs/s", "req/s", "p50 ms", "p99 ms", "vs health", "target",
                          "CPU cores: server / client / double / other"))
    if "health" in phases:
        p = phases["health"]
        out.append(row.format("health   GET /health/live (wrk)", "-", fmt(p.get("rps")), fmt(p.get("p50_ms"), 2),
                              fmt(p.get("p99_ms"), 2), "100%", "(the ceiling)", cpu(p)))
    for name, label in (("accept-100", "accepted, batches of 100"), ("accept-1000", "accepted, batches of 1,000")):
        if name not in phases:
            out.append(row.format(label, "-", "-", "-", "-", "-", "(not measured)", ""))
            continue
        p = phases[name]
        ratio = p["accepted_rps"] / health if health else None
        target = ">= 35% of health: " + (verdict(ratio >= 0.35) if ratio is not None else "-")
        out.append(row.format(f"{label} ({p['channel']})", fmt(p["accepted_rps"]), fmt(p["rps"], 1), fmt(p["p50_ms"], 1),
                              fmt(p["p99_ms"], 1), "-" if ratio is None else f"{100 * ratio:.1f}%", target, cpu(p)))
    e2e_row = "{:<42} {:>10} {:>9} {:>9} {:>9} {:>10}  {:<36} {}"
    out += ["", e2e_row.format("end to end (accept → provider double)", "delivered/s", "p50 ms", "p99 ms", "max ms",
                               "accepted/s", "target", "CPU cores: server / client / double / other")]
    for name, label, target in (("e2e-http", "HTTP  private SSP double (sms)", "http"),
                                ("e2e-smtp", "SMTP  aiosmtpd sink (email)", None),
                                ("e2e-client", "client mode: relay → SSP double (sms)", "client")):
        if name not in phases:
            out.append(e2e_row.format(label, "-", "-", "-", "-", "-", "(not measured)", ""))
            continue
        p = phases[name]
        if target == "client":
            vault = phases.get("e2e-http", {}).get("delivered_rps")
            ratio = p["delivered_rps"] / vault if vault else None
            target = ">= 50% of HTTP's: " + ("-" if ratio is None else f"{100 * ratio:.0f}% " + verdict(ratio >= 0.5))
        elif target:
            ok = p.get("e2e_p99_ms") is not None and p["delivered_rps"] >= 2000 and p["e2e_p99_ms"] < 1000
            target = ">= 2,000/s, p99 < 1 s: " + verdict(ok)
        else:
            target = "(no target)"
        out.append(e2e_row.format(label, fmt(p.get("delivered_rps")), fmt(p.get("e2e_p50_ms"), 1), fmt(p.get("e2e_p99_ms"), 1),
                                  fmt(p.get("e2e_max_ms"), 1), fmt(p["accepted_rps"]), target, cpu(p)))
    out.append("")
    for name, what in (("e2e-http", "HTTP"), ("e2e-smtp", "SMTP"), ("e2e-client", "Client mode")):
        if name in phases:
            p = phases[name]
            offered = f"offered {p['rate']:,}/s" if p["rate"] else "flat out"
            out.append(f"{what}: {p['accepted']:,} messages accepted in {p['seconds']:.1f} s ({offered}, batches of {p['batch']}, "
                       f"{p['connections']} connections), {p.get('delivered', 0):,} received by the double in "
                       f"{p.get('delivery_window_s', 0):.1f} s over {fmt(p.get('double_connections'))} connections; "
                       f"delivered {fmt(p.get('delivered_during_load_rps'))}/s while accepting, "
                       f"{fmt(p.get('delivered_in_drain_rps'))}/s in the {p.get('drain_s', 0):.1f} s drain after; "
                       f"redelivered {p.get('redeliveries', 0)}, undelivered {p.get('undelivered', 0)}")
    for name in ("accept-100", "accept-1000"):
        if "double_requests" in phases.get(name, {}):
            p = phases[name]
            out.append(f"{name}: the never-answering double held {p['double_connections']} provider connections by the end, "
                       f"{p['double_requests']} of them with an HTTP request (dispatcher parked)")
    busy = [f"{n} ({p['other_pct']}%)" for n, p in phases.items() if p.get("other_pct", 0) > 10]
    if busy:
        out += ["", "warning: other processes used more than 10% of the machine's CPU during: " + ", ".join(busy)
                + "; those figures understate this machine"]
    anomalies = [f"{name}: {a}" for name, p in phases.items() for a in p.get("anomalies", [])]
    if os.path.exists(args.anomalies):
        anomalies += [line.rstrip("\n") for line in open(args.anomalies) if line.strip()]
    out.append("")
    if anomalies:
        out.append(f"!!! ANOMALIES ({len(anomalies)}):")
        out += [f"!!!   {a}" for a in anomalies]
    else:
        out.append("anomalies: none (every send answered 202 with every message accepted, every health answer 200, "
                   "every accepted message reached its double once, nothing on the server's stderr)")
    print("\n".join(out))
    return 2 if anomalies else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    wrk = sub.add_parser("wrk")
    wrk.add_argument("--json", required=True)
    wrk.add_argument("--raw", required=True)
    wrk.add_argument("--watch", action="append")
    wrk.add_argument("wrk", nargs=argparse.REMAINDER)
    pre = sub.add_parser("preload")
    for name in ("--json", "--base", "--workspace", "--auth"):
        pre.add_argument(name, required=True)
    pre.add_argument("--customers", type=int, required=True)
    pre.add_argument("--batch", type=int, default=100)
    pre.add_argument("--client-keys", help="client mode: folder of brand.key and index.key; elements are sealed before they go")
    load = sub.add_parser("load")
    for name in ("--json", "--raw", "--base", "--workspace", "--key-id", "--secret", "--duration"):
        load.add_argument(name, required=True)
    load.add_argument("--mode", choices=("accept", "e2e"), required=True)
    load.add_argument("--batch", type=int, required=True)
    load.add_argument("--connections", type=int, required=True)
    load.add_argument("--rate", type=int, default=0)
    load.add_argument("--channel", choices=("sms", "email", "mixed"), default="sms")
    load.add_argument("--customers", type=int, default=20000)
    load.add_argument("--prefix", default="m")
    load.add_argument("--double")
    load.add_argument("--receipts", help="e2e: where the double's receipts go (message id, monotonic time)")
    load.add_argument("--drain-timeout", type=float, default=120)
    load.add_argument("--timeout", type=float, default=60)
    load.add_argument("--watch", action="append")
    sub.add_parser("idle")
    summary = sub.add_parser("summary")
    summary.add_argument("--dir", required=True)
    summary.add_argument("--anomalies", required=True)
    summary.add_argument("--header", nargs="*", default=[])
    args = parser.parse_args()
    if args.command == "wrk":
        if args.wrk[:1] == ["--"]:
            args.wrk = args.wrk[1:]
        command_wrk(args)
    elif args.command == "preload":
        return asyncio.run(preload(args))
    elif args.command == "idle":
        command_idle()
    elif args.command == "load":
        if args.mode == "e2e" and not (args.double and args.receipts):
            parser.error("--mode e2e needs --double and --receipts")
        asyncio.run(Load(args).run())
    else:
        return command_summary(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

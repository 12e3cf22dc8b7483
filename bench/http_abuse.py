"""HTTP abuse clients for bench/http_abuse.sh (run inside the daemon's
namespace): one phase of abusive clients from 127.0.0.2 while a probe asks
/healthz every 100 ms from 127.0.0.1; prints one JSON line of results.

  python3 http_abuse.py PHASE SECONDS PID
  PHASE: holding | heavy | unread  (probe: the probe alone, used internally)

The probe runs in a process of its own, as a load balancer's would: in the
abusers' event loop it would also measure how long 200 Python readers keep
that loop busy. PROBE_INLINE=1 runs it in the abusers' loop (how the first
figures in bench/RESULTS.md were taken).
"""
import asyncio, json, os, sys, time

HOST, PORT = "127.0.0.1", 8698
HEAVY = b"GET /api/v1/hosts?limit=10000&detail HTTP/1.1\r\nHost: x\r\n\r\n"
phase, secs, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
lat, failures, rss = [], 0, []
heavy_ok = 0
stop = False


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


async def connect(src="127.0.0.2"):
    return await asyncio.open_connection(HOST, PORT, local_addr=(src, 0))


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    if n:
        await r.readexactly(n)
    return head


async def holding(i):
    # One request every 8 s on a kept-alive connection (a slow poller).
    while not stop:
        try:
            r, w = await connect()
            while not stop:
                w.write(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
                await read_response(r)
                await asyncio.sleep(8)
        except Exception:
            await asyncio.sleep(0.5)


async def heavy(i):
    global heavy_ok
    while not stop:
        try:
            r, w = await connect()
            while not stop:
                w.write(HEAVY)
                await read_response(r)
                heavy_ok += 1
        except Exception:
            await asyncio.sleep(0.2)


async def unread(i):
    # Ask for the largest page and never read it; hold the connection.
    held = []
    while not stop:
        try:
            r, w = await connect()
            w.write(HEAVY)
            held.append(w)
            while not stop:
                await asyncio.sleep(0.5)
        except Exception:
            await asyncio.sleep(0.5)


async def probe():
    global failures
    while not stop:
        t = time.monotonic()
        try:
            r, w = await asyncio.wait_for(connect("127.0.0.1"), 10)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            head = await asyncio.wait_for(read_response(r), 10)
            w.close()
            if b" 200 " not in head.split(b"\r\n")[0]:
                failures += 1
            else:
                lat.append(time.monotonic() - t)
        except Exception:
            failures += 1
        await asyncio.sleep(max(0, 0.1 - (time.monotonic() - t)))


async def sample():
    while not stop:
        rss.append(rss_kib())
        await asyncio.sleep(0.1)


async def probe_process():
    # The probe alone, in a fresh interpreter; its latencies come back as JSON.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "probe", str(secs), str(pid), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    r = json.loads(out)
    global failures
    lat.extend(r["lat"])
    failures += r["failed"]


async def probe_only():
    global stop
    p = asyncio.create_task(probe())
    await asyncio.sleep(secs)
    stop = True
    p.cancel()
    await asyncio.gather(p, return_exceptions=True)


async def main():
    global stop
    n, f = {"holding": (256, holding), "heavy": (200, heavy), "unread": (250, unread)}[phase]
    tasks = [asyncio.create_task(f(i)) for i in range(n)]
    await asyncio.sleep(1)  # let them connect
    inline = os.environ.get("PROBE_INLINE") == "1"
    ps = [asyncio.create_task(probe() if inline else probe_process()), asyncio.create_task(sample())]
    await asyncio.sleep(secs)
    if not inline:
        await ps[0]
    stop = True
    for t in tasks + ps:
        t.cancel()
    await asyncio.gather(*tasks, *ps, return_exceptions=True)


if phase == "probe":
    asyncio.run(probe_only())
    print(json.dumps({"lat": lat, "failed": failures}))
    sys.exit(0)
asyncio.run(main())
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else None
print(json.dumps({
    "phase": phase, "probes": len(lat) + failures, "failed": failures,
    "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat[-1] * 1000 if lat else None,
    "peak_rss_kib": max(rss) if rss else 0, "heavy_pages": heavy_ok,
}))

#!/usr/bin/env python3
# bench_retention.py SLUICE_BIN [N]: the bus log's retention prune rate (docs/BUS.md).
# N events (default 50000, PutEvents of 10 over one connection) on a fresh `sluice serve`
# (fake clock, --event-retention 1h), Sluice.AdvanceClock 2 h, one more event, then the
# time until sluice_events_pruned_total counts all N (the newest event always stays).
import http.client, json, os, subprocess, sys, tempfile, time, re
binp = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
print("command: python3 bench/bench_retention.py %s %d" % (binp, n))
d = tempfile.mkdtemp()
p = subprocess.Popen([binp, "serve", "--data", d + "/data", "--http", "127.0.0.1:0",
                      "--workers", "tcp://127.0.0.1:0", "--virtual-time", "2026-03-01T00:00:00Z",
                      "--event-retention", "1h", "--log-level", "warn"],
                     stderr=subprocess.PIPE, text=True)
port = None
for line in p.stderr:
    m = re.search(r"ready http=[^:]+:(\d+)", line)
    if m:
        port = int(m.group(1)); break
c = http.client.HTTPConnection("127.0.0.1", port)
def call(target, body):
    c.request("POST", "/", json.dumps(body), {"X-Amz-Target": target,
              "Content-Type": "application/x-amz-json-1.1"})
    r = c.getresponse(); data = r.read()
    assert r.status == 200, data
    return json.loads(data)
t0 = time.time()
for i in range(0, n, 10):
    call("AWSEvents.PutEvents", {"Entries": [{"Source": "s", "DetailType": "t",
         "Detail": json.dumps({"i": i + k})} for k in range(10)]})
put_s = time.time() - t0
call("Sluice.AdvanceClock", {"Seconds": 7200})
call("AWSEvents.PutEvents", {"Entries": [{"Source": "s", "DetailType": "t", "Detail": "{}"}]})
t0 = time.time()
while True:
    c.request("GET", "/metrics"); body = c.getresponse().read().decode()
    m = re.search(r"^sluice_events_pruned_total (\d+)$", body, re.M)
    if int(m.group(1)) >= n:
        break
    time.sleep(0.05)
prune_s = time.time() - t0
print(f"{n} events put in {put_s:.1f} s; pruned {m.group(1)} in {prune_s:.2f} s = {n/prune_s:.0f} events/s")
p.terminate(); p.wait()
subprocess.run(["rm", "-rf", d])

#!/usr/bin/env python3
"""Partitions owned by two group members at the same time, from the members' logs (clients.py member):
  overlaps.py [--ref EPOCH] NAME.log...
A member owns a partition from its "assigned" line until the "revoked" or "lost" line that gives it up (the end
of the revoke callback: the partition is only handed over after it); a partition still owned at the end of a
log is owned until that log's last line. Times are CLOCK_MONOTONIC (mono=), the same clock for every process of
the machine. Prints one line per pair of members that owned a partition at once:
  overlap A B SECONDS START END PARTITIONS FETCHED_A FETCHED_B
SECONDS the longest overlap of any of those partitions, START and END the span of all of them in seconds after
--ref (an epoch time; without it, after the first line of the first log), FETCHED_X the records X received from
those partitions in the overlap (from its "fetched" lines, each counting the half second before it). Prints
nothing when no partition was owned twice."""
import argparse
import re
import sys

MONO = re.compile(r"mono=([0-9.]+)")


def parse(path):
    """(name, intervals {partition: [(start, end)]}, fetched [(mono, {partition: n})], epoch - mono)."""
    owned, intervals, fetched = {}, {}, []
    name, offset, last_epoch = None, None, None
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3:
                continue
            try:
                epoch = float(fields[0])
            except ValueError:
                continue  # librdkafka's own output
            name, event, last_epoch = fields[1], fields[2], epoch
            m = MONO.search(line)
            if not m:
                continue
            mono = float(m.group(1))
            if offset is None:
                offset = epoch - mono
            if event in ("assigned", "revoked", "lost"):
                parts = [] if fields[5] == "-" else fields[5].split(",")
                for p in parts:
                    if event == "assigned":
                        owned.setdefault(p, mono)
                    elif p in owned:
                        intervals.setdefault(p, []).append((owned.pop(p), mono))
            elif event == "fetched":
                counts = dict(item.rsplit(":", 1) for item in fields[4].split(","))
                fetched.append((mono, {p: int(n) for p, n in counts.items()}))
    if offset is None:
        return name, {}, [], 0.0
    end = last_epoch - offset
    for p, start in owned.items():
        intervals.setdefault(p, []).append((start, end))
    return name, intervals, fetched, offset


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=float, help="epoch time the START and END columns count from")
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    members = [parse(path) for path in args.logs]
    members = [m for m in members if m[0] is not None]
    if not members:
        sys.exit("no member log")
    offset = members[0][3]
    ref = args.ref - offset if args.ref is not None else min(
        (s for m in members for iv in m[1].values() for s, _ in iv), default=0.0)
    for i, (a, a_iv, a_fetched, _) in enumerate(members):
        for b, b_iv, b_fetched, _ in members[i + 1:]:
            spans = {}  # partition -> [(start, end)] of overlaps
            for p in set(a_iv) & set(b_iv):
                for s1, e1 in a_iv[p]:
                    for s2, e2 in b_iv[p]:
                        s, e = max(s1, s2), min(e1, e2)
                        if e > s:
                            spans.setdefault(p, []).append((s, e))
            if not spans:
                continue
            longest = max(e - s for iv in spans.values() for s, e in iv)
            start = min(s for iv in spans.values() for s, _ in iv)
            end = max(e for iv in spans.values() for _, e in iv)

            def received(fetched):
                return sum(n for mono, counts in fetched for p, n in counts.items()
                           if any(s < mono <= e + 0.5 for s, e in spans.get(p, [])))

            parts = ",".join(sorted(spans, key=lambda p: (p.split("/")[0], int(p.split("/")[1]))))
            print(f"overlap {a} {b} {longest:.1f} {start - ref:.1f} {end - ref:.1f} {parts} "
                  f"{received(a_fetched)} {received(b_fetched)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The group coordinator's decisions, from a Tansu 0.6.0 broker log written with
RUST_LOG=warn,tansu_broker::coordinator=debug (repro-*.sh --keep-logs keeps it as broker.log):
  coordinator-log.py broker.log
One line per JoinGroup request, JoinGroup answer, SyncGroup answer and LeaveGroup, each with its line in the log
(L123) and the `administrator.rs` lines (:1901) that logged it. Members are named by their member id's prefix
(the client.id: a, b, c). The consumer-protocol bytes are decoded: a subscription as owned=<partitions the member
says it owns> gen=<the generation it says they are from>, an assignment as its partitions. A JoinGroup answer
to the group's leader carries every member's subscription as the coordinator stored it (`Wrapper::members`,
administrator.rs:405-420); the line prints them after "leader gets:"."""
import re
import struct
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TAG = re.compile(r"^(\S+) +\w+ tansu_broker::coordinator::group::administrator: (\d+): (.*)$")
METADATA = re.compile(r'metadata: b"((?:[^"\\]|\\.)*)"')
MEMBER = re.compile(r'"([^"]+)": Member \{ join_response: JoinGroupResponseMember \{ member_id: "[^"]*", '
                    r'group_instance_id: [^,]*, metadata: b"((?:[^"\\]|\\.)*)" \}')
ASSIGNMENT = re.compile(r'SyncGroupRequestAssignment \{ member_id: "([^"]+)", assignment: b"((?:[^"\\]|\\.)*)"')


def unescape(text):
    """The bytes of a Rust `Bytes` Debug string (b"\\0\\x03t1...")."""
    out, i = bytearray(), 0
    simple = {"0": 0, "n": 10, "r": 13, "t": 9, "\\": 92, '"': 34, "'": 39}
    while i < len(text):
        c = text[i]
        if c == "\\":
            n = text[i + 1]
            if n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            out.append(simple[n])
            i += 2
            continue
        out.append(ord(c))
        i += 1
    return bytes(out)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def partitions(self):
        """An array of (topic, [partition]) as "t1/0,t1/3"."""
        parts = []
        for _ in range(self.take(">i")):
            topic = self.string()
            parts += [f"{topic}/{self.take('>i')}" for _ in range(self.take(">i"))]
        return ",".join(sorted(parts, key=lambda p: (p.split("/")[0], int(p.split("/")[1])))) or "-"


def subscription(data):
    """ConsumerProtocolSubscription (v0-v3): owned partitions and generation, as the member sent them."""
    try:
        r = Reader(data)
        version = r.take(">h")
        for _ in range(r.take(">i")):
            r.string()
        n = r.take(">i")
        r.pos += max(n, 0)  # user data (the sticky assignor's own copy)
        owned = r.partitions() if version >= 1 else "?"
        generation = r.take(">i") if version >= 2 else "?"
        return f"owned={owned} gen={generation}"
    except (struct.error, UnicodeDecodeError, IndexError):
        return f"undecoded({len(data)} bytes)"


def assignment(data):
    """ConsumerProtocolAssignment: the partitions."""
    if not data:
        return "(empty)"
    try:
        r = Reader(data)
        r.take(">h")
        return r.partitions()
    except (struct.error, UnicodeDecodeError, IndexError):
        return f"undecoded({len(data)} bytes)"


def name(member_id):
    return member_id.split("-")[0] if member_id else '""'


def field(text, key):
    m = re.search(rf'\b{key}=(?:Some\()?"([^"]*)"', text) or re.search(rf"\b{key}=([^\s,]+)", text)
    return m.group(1) if m else None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    join = sync = None  # the request being answered, with the lines logged for it
    with open(sys.argv[1], errors="replace") as f:
        for number, raw in enumerate(f, 1):
            m = TAG.match(ANSI.sub("", raw.rstrip("\n")))
            if not m:
                continue
            time, line, text = m.group(1)[11:23], int(m.group(2)), m.group(3)
            if "missed heartbeat" in text:
                print(f"{time} L{number} (:{line}) {text}")
            elif line == 712:  # JoinGroup request
                meta = METADATA.search(text)
                print(f"{time} L{number} JoinGroup request {name(field(text, 'member_id'))} client {field(text, 'client_id')}: "
                      f"{subscription(unescape(meta.group(1))) if meta else '-'}")
            elif line == 763:
                print(f"{time} L{number}   {name(field(text, 'member_id'))}: held 3 s, the leader is another (:758-766)")
            elif line in (1694, 2263):  # Inner<Forming>::join, Inner<Formed>::join
                join = {"member": name(field(text, "member_id")), "state": "Forming" if line == 1694 else "Formed",
                        "lines": [line]}
            elif join and ("member_metadata=" in text or "join_outcome=" in text):
                join["lines"].append(line)
                if "member_metadata=" in text:
                    join["metadata"] = field(text, "member_metadata")
                else:
                    join["outcome"] = field(text, "join_outcome")
            elif line == 785 and join:  # the group after the join
                leader = re.search(r'leader: (?:Some\()?"([^"]+)"', text)
                leader = name(leader.group(1)) if leader else "none"
                generation = re.search(r"generation_id: (-?\d+)", text).group(1)
                state = "Formed" if "updated=Formed" in text else "Forming"
                out = (f"{time} L{number} JoinGroup answer {join['member']} ({join['state']}::join, "
                       f"metadata {join.get('metadata', '-')}, {join.get('outcome')}, lines "
                       f"{','.join(f':{n}' for n in join['lines'])}) -> generation {generation}, {state}, leader {leader}")
                if join.get("outcome") == "None" and leader == join["member"]:
                    members = "; ".join(f"{name(mid)} {subscription(unescape(meta))}"
                                        for mid, meta in MEMBER.findall(text))
                    out += f"; leader gets: {members}"
                print(out)
                join = None
            elif line in (826, 955):
                print(f"{time} L{number}   storage update outdated: the request is tried again")
            elif line == 869:  # SyncGroup request
                sync = {"member": name(field(text, "member_id")), "generation": field(text, "generation_id"),
                        "assignments": "; ".join(f"{name(mid)} {assignment(unescape(b))}"
                                                 for mid, b in ASSIGNMENT.findall(text))}
            elif sync and "sync_outcome=" in text:
                sync["outcome"], sync["line"] = field(text, "sync_outcome"), line
            elif line == 915 and sync:
                out = (f"{time} L{number} SyncGroup {sync['member']} gen {sync['generation']}: "
                       f"{sync.get('outcome')} (:{sync.get('line')})")
                if sync["assignments"]:
                    out += f"; the leader's assignments: {sync['assignments']}"
                print(out)
                sync = None
            elif line == 993:
                print(f"{time} L{number} LeaveGroup {name(field(text, 'member_id'))}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""claim_or_wait.py PATH SOURCE [CHUNK_DELAY_S] [GATE]

The single-flight protocol a training worker runs: try to create PATH with
O_CREAT|O_EXCL; on success "compute" it by copying SOURCE slowly (chunks of
64 KiB with a pause) and print "computed"; on EEXIST read it (the open
waits while it is in flight) and print "read <sha256>".  Any other error is
printed as "error <errno name>" with exit status 1.

With GATE (a directory) the worker first reports itself ready by creating
GATE/ready.<pid>, then waits for GATE/go, so that many workers start at
the same moment.
"""
import errno
import hashlib
import os
import sys
import time


def main():
    path, source = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    if len(sys.argv) > 4:
        gate = sys.argv[4]
        open(os.path.join(gate, "ready.%d" % os.getpid()), "w").close()
        while not os.path.exists(os.path.join(gate, "go")):
            time.sleep(0.005)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            with open(path, "rb") as f:
                print("read", hashlib.sha256(f.read()).hexdigest(), flush=True)
            return 0
        except OSError as e:
            print("error", errno.errorcode.get(e.errno, e.errno), flush=True)
            return 1
    with open(source, "rb") as src:
        while True:
            chunk = src.read(65536)
            if not chunk:
                break
            os.write(fd, chunk)
            time.sleep(delay)
    try:
        os.close(fd)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, e.errno), flush=True)
        return 1
    print("computed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

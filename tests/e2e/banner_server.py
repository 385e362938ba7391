"""A server-first TCP protocol for the e2e tests: greets each client with
``HELLO <peer ip>`` before reading anything, then echoes each line back upper-cased.

    python banner_server.py HOST PORT          (prints READY once listening)
"""

from __future__ import annotations

import socket
import sys
import threading


def serve(conn: socket.socket, peer: str) -> None:
    with conn:
        f = conn.makefile("rwb")
        f.write(f"HELLO {peer}\n".encode())
        f.flush()
        for line in f:
            f.write(line.upper())
            f.flush()


def main() -> None:
    host = sys.argv[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.create_server((host, int(sys.argv[2])), family=family)
    print("READY", flush=True)
    while True:
        conn, addr = srv.accept()
        threading.Thread(target=serve, args=(conn, addr[0]), daemon=True).start()


if __name__ == "__main__":
    main()

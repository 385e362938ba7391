"""Golden responses (decoded by Role.CLIENT, after the requests in ``Vector.sent``): as
nginx, Go net/http, Python's http.server and RFC 6455 servers send them; the expected
events are written by hand (see ``vectors`` for the notation and the harness)."""

from __future__ import annotations

from mosn_py.codecs.base import Frame, HeaderList, StreamType

from .vectors import CLOSED, GET, C, D, H, R, T, Vector, request

RESPONSES = [
    Vector(
        "nginx_200",
        C,
        b"HTTP/1.1 200 OK\r\n"
        b"Server: nginx/1.24.0\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        b"Content-Type: text/html\r\n"
        b"Content-Length: 13\r\n"
        b"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        b"Connection: keep-alive\r\n"
        b'ETag: "659200-d"\r\n'
        b"Accept-Ranges: bytes\r\n"
        b"\r\n"
        b"<h1>hi</h1>\r\n",  # 13 octets
        [
            H(
                1,
                [
                    (":status", "200"),
                    ("server", "nginx/1.24.0"),
                    ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
                    ("content-type", "text/html"),
                    ("content-length", "13"),
                    ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
                    ("connection", "keep-alive"),
                    ("etag", '"659200-d"'),
                    ("accept-ranges", "bytes"),
                ],
                end=False,
                status=200,
            ),
            D(1, b"<h1>hi</h1>\r\n", True),
        ],
        sent=(GET,),
    ),
    Vector(
        "go_chunked_trailers",
        C,
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n"
        b"5\r\nhello\r\n"
        b"6\r\n world\r\n"
        b"0\r\n"
        b"X-Checksum: abc\r\n"
        b"\r\n",
        [
            H(
                1,
                [
                    (":status", "200"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("trailer", "X-Checksum"),
                    ("transfer-encoding", "chunked"),
                ],
                end=False,
                status=200,
            ),
            D(1, b"hello world", False),
            T(1, [("x-checksum", "abc")]),
        ],
        sent=(GET,),
    ),
    Vector(
        "head_then_get",
        C,
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/html\r\n"
        b"Content-Length: 1234\r\n"  # describes the GET body: none follows a HEAD (§6.3)
        b"\r\n"
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Length: 2\r\n"
        b"\r\n"
        b"ok",
        [
            H(
                1,
                [(":status", "200"), ("content-type", "text/html"), ("content-length", "1234")],
                end=True,
                status=200,
            ),
            H(2, [(":status", "200"), ("content-length", "2")], end=False, status=200),
            D(2, b"ok", True),
        ],
        sent=(request("HEAD"), GET),
    ),
    Vector(
        "no_content_then_200",
        C,
        b"HTTP/1.1 204 No Content\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        b"\r\n"
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Length: 1\r\n"
        b"\r\n"
        b"x",
        [
            H(
                1,
                [(":status", "204"), ("date", "Mon, 01 Jan 2024 00:00:00 GMT")],
                end=True,
                status=204,
            ),
            H(2, [(":status", "200"), ("content-length", "1")], end=False, status=200),
            D(2, b"x", True),
        ],
        sent=(request("DELETE"), GET),
    ),
    Vector(
        "not_modified",
        C,
        b"HTTP/1.1 304 Not Modified\r\n"
        b'ETag: "x"\r\n'
        b"Cache-Control: max-age=60\r\n"
        b"Content-Length: 99\r\n"  # the representation's length; no body (§6.3 rule 1)
        b"\r\n",
        [
            H(
                1,
                [
                    (":status", "304"),
                    ("etag", '"x"'),
                    ("cache-control", "max-age=60"),
                    ("content-length", "99"),
                ],
                end=True,
                status=304,
            ),
        ],
        sent=(GET,),
    ),
    Vector(
        "continue_then_created",
        C,
        b"HTTP/1.1 100 Continue\r\n"  # interim: same stream, the final response follows
        b"\r\n"
        b"HTTP/1.1 201 Created\r\n"
        b"Location: /big\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        [
            H(1, [(":status", "100")], end=False, status=100, interim=True),
            H(
                1,
                [(":status", "201"), ("location", "/big"), ("content-length", "0")],
                end=True,
                status=201,
            ),
        ],
        sent=(request("PUT", "/big", ("content-length", "0"), ("expect", "100-continue")),),
    ),
    Vector(
        "early_hints",
        C,
        b"HTTP/1.1 103 Early Hints\r\n"
        b"Link: </style.css>; rel=preload; as=style\r\n"
        b"\r\n"
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Length: 4\r\n"
        b"\r\n"
        b"page",
        [
            H(
                1,
                [(":status", "103"), ("link", "</style.css>; rel=preload; as=style")],
                end=False,
                status=103,
                interim=True,
            ),
            H(1, [(":status", "200"), ("content-length", "4")], end=False, status=200),
            D(1, b"page", True),
        ],
        sent=(GET,),
    ),
    Vector(
        "websocket_101_then_frames",
        C,
        b"HTTP/1.1 101 Switching Protocols\r\n"  # RFC 6455 §1.3
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
        b"\x81\x05hello",  # a text frame: tunnel data from here on
        [
            H(
                1,
                [
                    (":status", "101"),
                    ("upgrade", "websocket"),
                    ("connection", "Upgrade"),
                    ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                ],
                end=False,
                status=101,
                keep_alive=False,
                upgrade=True,
            ),
            D(1, b"\x81\x05hello", True),
            CLOSED,
        ],
        sent=(request("GET", "/chat", ("upgrade", "websocket"), ("connection", "Upgrade")),),
        eof=True,
    ),
    Vector(
        "connect_established",
        C,
        b"HTTP/1.1 200 Connection established\r\n"  # 2xx to CONNECT: a tunnel (§9.3.6)
        b"\r\n"
        b"\x16\x03\x01\x00\x05hello",  # TLS record bytes through the tunnel
        [
            H(1, [(":status", "200")], end=False, status=200, keep_alive=False, upgrade=True),
            D(1, b"\x16\x03\x01\x00\x05hello", True),
            CLOSED,
        ],
        sent=(
            Frame(
                StreamType.REQUEST,
                0,
                HeaderList([(":method", "CONNECT"), (":authority", "example.com:443")]),
                end_stream=False,
            ),
        ),
        eof=True,
    ),
    Vector(
        "python_http10_until_close",
        C,
        b"HTTP/1.0 200 OK\r\n"  # http.server: no Content-Length, body until EOF
        b"Server: SimpleHTTP/0.6 Python/3.11.7\r\n"
        b"Content-type: text/plain\r\n"
        b"\r\n"
        b"body until close\n",
        [
            H(
                1,
                [
                    (":status", "200"),
                    ("server", "SimpleHTTP/0.6 Python/3.11.7"),
                    ("content-type", "text/plain"),
                ],
                end=False,
                status=200,
                version="1.0",
                keep_alive=False,
            ),
            D(1, b"body until close\n", True),
            CLOSED,
        ],
        sent=(GET,),
        eof=True,
    ),
    Vector(
        "http11_until_close",
        C,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstreamed",
        [
            H(
                1,
                [(":status", "200"), ("connection", "close")],
                end=False,
                status=200,
                keep_alive=False,
            ),
            D(1, b"streamed", True),
            CLOSED,
        ],
        sent=(GET,),
        eof=True,
    ),
    Vector(
        "close_after_length",
        C,
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"Content-Length: 4\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"busy"
        b"junk after close",  # ignored: no message follows a closing one
        [
            H(
                1,
                [(":status", "503"), ("content-length", "4"), ("connection", "close")],
                end=False,
                status=503,
                keep_alive=False,
            ),
            D(1, b"busy", True),
            R(2),  # the pipelined second request never gets an answer
            CLOSED,
        ],
        sent=(GET, GET),
        eof=True,
    ),
    Vector(
        "eof_before_response",
        C,
        b"HTTP/1.1 200 OK\r\nContent-Le",  # the upstream died inside the head
        [R(1), R(2), CLOSED],
        sent=(GET, GET),
        eof=True,
    ),
]

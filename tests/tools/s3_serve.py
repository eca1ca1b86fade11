#!/usr/bin/env python3
"""s3_serve.py - a read-only S3 endpoint over a directory, for the tests.

    s3_serve.py ROOT PORTFILE

Serves ROOT/<bucket>/<key> path-style on 127.0.0.1 to the real aws client
(aws s3 cp/sync with --endpoint-url and --no-sign-request): HeadObject,
GetObject with Range, ListObjectsV2 without paging.  Writes the port it
listens on to PORTFILE once it accepts connections.
"""
import email.utils, hashlib, os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[1]


def etag(path):
    with open(path, "rb") as f:
        return '"%s"' % hashlib.md5(f.read()).hexdigest()


class S3(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def parts(self):
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path).lstrip("/")
        bucket, _, key = path.partition("/")
        return bucket, key, urllib.parse.parse_qs(u.query)

    def list_v2(self, bucket, q):
        prefix = q.get("prefix", [""])[0]
        top = os.path.join(ROOT, bucket)
        items = []
        for d, _, files in os.walk(top):
            for name in files:
                p = os.path.join(d, name)
                key = os.path.relpath(p, top)
                if key.startswith(prefix):
                    items.append((key, p))
        out = ['<?xml version="1.0" encoding="UTF-8"?>'
               '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
               '<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>'
               '<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>'
               % (bucket, prefix, len(items))]
        for key, p in sorted(items):
            st = os.stat(p)
            out.append('<Contents><Key>%s</Key><LastModified>%s</LastModified>'
                       '<ETag>%s</ETag><Size>%d</Size>'
                       '<StorageClass>STANDARD</StorageClass></Contents>'
                       % (urllib.parse.quote(key, safe="/")
                          if q.get("encoding-type") == ["url"] else key,
                          time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                        time.gmtime(st.st_mtime)),
                          etag(p).replace('"', "&quot;"), st.st_size))
        out.append("</ListBucketResult>")
        self.send(200, "".join(out).encode(), [("Content-Type", "application/xml")])

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        bucket, key, q = self.parts()
        if not key:
            return self.list_v2(bucket, q)
        p = os.path.join(ROOT, bucket, key)
        if not os.path.isfile(p):
            return self.send(404, b"<Error><Code>NoSuchKey</Code></Error>",
                             [("Content-Type", "application/xml")])
        data = open(p, "rb").read()
        st = os.stat(p)
        hdr = [("ETag", etag(p)), ("Accept-Ranges", "bytes"),
               ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
               ("Content-Type", "application/octet-stream")]
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            a, b = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
            hdr.append(("Content-Range", "bytes %d-%d/%d" % (a, b, len(data))))
            return self.send(206, data[a:b + 1], hdr)
        self.send(200, data, hdr)


srv = ThreadingHTTPServer(("127.0.0.1", 0), S3)  # listening from here
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()

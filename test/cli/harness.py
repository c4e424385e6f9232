"""What the Python end-to-end tests share: a temporary directory with a fresh ECDSA P-256
certificate for 127.0.0.1, portal-auth servers started on a free port (killed and cleaned up at
exit), and a TLS context that trusts the certificate."""
import atexit, os, shutil, ssl, subprocess, sys, tempfile


class Harness:
    def __init__(self, binary, source, name):
        self.binary, self.source = binary, source
        self.work = tempfile.mkdtemp(prefix="portal-auth-%s-" % name)
        self.cert = os.path.join(self.work, "cert.pem")
        self.key = os.path.join(self.work, "key.pem")
        self.audit = os.path.join(self.work, "audit.jsonl")
        self.servers = []
        atexit.register(self.cleanup)
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", self.key], check=True)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", self.key, "-out", self.cert,
                        "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, stderr=subprocess.DEVNULL)
        self.tls = ssl.create_default_context(cafile=self.cert)

    def start_server(self, *extra_flags, directory=None, stderr=None, preexec_fn=None,
                     threads=2):
        """Starts portal-auth with the demo directory (or `directory`) and the audit log;
        returns (process, port). stderr: an open file, or None to discard it."""
        directory = directory or os.path.join(self.source, "app/demo-directory.json")
        proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:0", "--cert", self.cert, "--key", self.key,
             "--directory", directory, "--audit-log", self.audit, "--threads", str(threads),
             *extra_flags],
            stdout=subprocess.PIPE, stderr=stderr or subprocess.DEVNULL, text=True,
            preexec_fn=preexec_fn)
        self.servers.append(proc)
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on https://127.0.0.1:"):
            proc.kill()
            sys.exit("server did not start: " + line)
        return proc, int(line.rsplit(":", 1)[1])

    def cleanup(self):
        for p in self.servers:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(self.work, ignore_errors=True)

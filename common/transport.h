/*
 * transport.h - memsched's messages over ZeroMQ; the only module that touches libzmq.
 *
 * Agents hold a client (DEALER) per coordinator endpoint; the coordinator a server (ROUTER).
 * Every TCP endpoint is CurveZMQ: the server admits only client public keys found in its
 * allowlist directory (answered by a ZAP handler inside transport_server_recv), clients pin the
 * server's public key. Plain (insecure) sockets must be asked for and are refused on anything
 * but loopback or ipc://. Received messages are size-limited (ZMQ_MAXMSGSIZE) before anyone
 * decodes them: WIRE_REQUEST_MAX_BYTES on a server, WIRE_MSG_MAX_BYTES on a client.
 *
 * A client never blocks its caller: messages go to a bounded queue of our own that drops the
 * oldest when full (counted), and are handed to ZeroMQ only while a connection is up
 * (ZMQ_IMMEDIATE), so a coordinator outage neither blocks nor grows the agent. The queue moves
 * when the client is used (send or recv), so an agent polls its client between rounds.
 *
 * Key files are in the config syntax: `public = Z85` and, for a key pair, `secret = Z85`.
 * Each key in an allowlist is bound to exactly one name: the file's `name = NAME` line, else
 * the file's stem (allow/hv1.key names hv1). For agents the name is the host id the key may
 * speak for; for operators it is who they are. Every received message carries the name of its
 * sender's key, looked up at receipt: a key removed from the allowlist (reload) has none, and its
 * messages are dropped. Names are 1-63 characters of [A-Za-z0-9._-]; one key bound to two names
 * makes the whole allowlist invalid. One key may complete at most 10 handshakes in a burst and
 * then one every 6 s: it cannot open connections without end (a refused client backs off and
 * tries again). How many connections it keeps open is not capped: libzmq cannot close one.
 */
#ifndef MEMSCHED_COMMON_TRANSPORT_H
#define MEMSCHED_COMMON_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRANSPORT_KEY_Z85_LEN 41 /* 40 characters and the NUL */
#define TRANSPORT_ERR_MAX     256
#define TRANSPORT_ID_MAX      256
#define TRANSPORT_NAME_MAX    64 /* a key's bound name, NUL included (= WIRE_HOST_ID_MAX) */
#define TRANSPORT_ADDRESS_MAX 64 /* a peer's IP address as text, NUL included */

struct transport_keys {
    char public_z85[TRANSPORT_KEY_Z85_LEN];
    char secret_z85[TRANSPORT_KEY_Z85_LEN]; /* "" when only the public key is known */
    char name[TRANSPORT_NAME_MAX];          /* the `name = ` line, "" when the file has none */
};

#define TRANSPORT_FINGERPRINT_LEN 20 /* "xxxx:xxxx:xxxx:xxxx" and the NUL */

/* A short, stable name for a public key that people can compare (agent logs, memschedctl
 * keygen): a 64-bit hash of the key's 32 bytes as 16 hex digits in groups of four. Not a
 * security check (the allowlist holds whole keys). Returns 0, or -EINVAL for a malformed key. */
int transport_key_fingerprint(const char *public_z85, char *out, size_t out_len);

/* A new CURVE key pair. Returns 0 or -EIO. */
int transport_keygen(struct transport_keys *keys);

/* Write keys to path (0600 when it holds a secret, 0644 otherwise), atomically, through a fresh
 * mkstemp file. Returns 0 or -errno. */
int transport_keys_save(const char *path,
                        const struct transport_keys *keys,
                        bool with_secret,
                        char *err,
                        size_t err_len);

/* Read a key file; need_secret makes a missing secret an error. A file holding a secret that
 * group or others may read is refused (-EPERM). Returns 0 or -errno/-EINVAL. */
int transport_keys_load(
    const char *path, struct transport_keys *keys, bool need_secret, char *err, size_t err_len);

/* Load the allowlist a server would from dir (and read_only_dir when not NULL or ""), every key
 * file parsed and every name checked, then drop it: --check-config. *n_keys (may be NULL) gets
 * the number of keys. Returns 0 or the first error, naming the file. */
int transport_allowlist_check(
    const char *dir, const char *read_only_dir, size_t *n_keys, char *err, size_t err_len);

/* True for tcp:// on a literal loopback address (127.0.0.0/8, [::1]), and for ipc:// and
 * inproc://. Host names, localhost included, are not literal and are refused. */
bool transport_endpoint_is_local(const char *endpoint);

/* ---- server (coordinator) ---- */

struct transport_server;

struct transport_server_options {
    const char *endpoint;      /* e.g. tcp://0.0.0.0:7400 or ipc:///run/memsched/control.sock */
    const char *key_path;      /* the server's key pair (CURVE) */
    const char *allow_dir;     /* clients' public key files (*.key) (CURVE) */
    const char *read_only_dir; /* more clients' keys, marked read-only (CURVE; may be NULL) */
    bool insecure;             /* no CURVE: only for local endpoints */
    const char *zap_domain;    /* tells servers' allowlists apart in one process ("" = default) */
    int ipc_mode;              /* ipc:// socket file permissions, e.g. 0660 (0 = leave as made) */
};

/* Who sent a message: the ROUTER's routing id, and under CURVE the client's public key and the
 * name the allowlist binds to it. */
struct transport_peer {
    uint8_t id[TRANSPORT_ID_MAX];
    size_t id_len;
    char key_z85[TRANSPORT_KEY_Z85_LEN]; /* "" without CURVE */
    char name[TRANSPORT_NAME_MAX];       /* "" without CURVE */
    bool read_only;                      /* its key came from the read-only directory */
    long uid;                            /* over ipc://, the peer process's uid; else -1 */
};

struct transport_server_stats {
    uint64_t received;
    uint64_t sent;
    uint64_t send_failures; /* peer gone or its queue full */
    uint64_t keys_refused;  /* handshakes from keys not in the allowlist */
    uint64_t unlisted;      /* messages dropped: their key left the allowlist after connecting */
    uint64_t handshakes_throttled; /* refused: the key opened connections too fast */
    size_t keys_allowed;
    /* The newest handshake refused for a key not in the allowlist: who knocked. */
    char refused_address[TRANSPORT_ADDRESS_MAX]; /* "" before any */
    char refused_key_z85[TRANSPORT_KEY_Z85_LEN]; /* its public key; "" if not CURVE */
};

int transport_server_open(const struct transport_server_options *opts,
                          struct transport_server **out,
                          char *err,
                          size_t err_len);

void transport_server_close(struct transport_server **server);

/* Wait up to timeout_ms (-1 forever) for a message on any of servers[0, n). Returns 1 and sets
 * *which, *from and a new buffer (*buf, *len; the caller frees it), 0 on timeout, or -errno
 * (-EINTR when a signal arrived). ZAP handshakes are answered meanwhile. */
int transport_server_recv(struct transport_server **servers,
                          size_t n,
                          int timeout_ms,
                          size_t *which,
                          struct transport_peer *from,
                          uint8_t **buf,
                          size_t *len);

/* A message already queued on s, taken without waiting and without a poll (a system call):
 * 1 with *from and a new buffer as transport_server_recv() gives them, or 0 for none (or
 * one dropped as not ours). ZAP handshakes are not answered here: poll too, now and then. */
int transport_server_take(struct transport_server *s,
                          struct transport_peer *from,
                          uint8_t **buf,
                          size_t *len);

/* transport_server_recv(), and also returns 2 as soon as wake_fd (a file descriptor; -1 for
 * none) is readable, taking nothing from it: how another thread's work wakes the loop. */
int transport_server_poll(struct transport_server **servers,
                          size_t n,
                          int wake_fd,
                          int timeout_ms,
                          size_t *which,
                          struct transport_peer *from,
                          uint8_t **buf,
                          size_t *len);

/* Send to a peer without blocking. Returns 0, or -EHOSTUNREACH / -EAGAIN (counted). */
int transport_server_send(struct transport_server *server,
                          const struct transport_peer *to,
                          const uint8_t *buf,
                          size_t len);

/* Re-read the allowlist directories (SIGHUP). On error the old list stays. Messages from a key
 * no longer listed are dropped from then on, on connections already open too. */
int transport_server_reload_allowlist(struct transport_server *server, char *err, size_t err_len);

/* The endpoint actually bound (a tcp://...:* bind gets its port here). */
int transport_server_endpoint(const struct transport_server *server, char *buf, size_t len);

void transport_server_get_stats(const struct transport_server *server,
                                struct transport_server_stats *stats);

/* ---- client (agent, memschedctl) ---- */

struct transport_client;

struct transport_client_options {
    const char *endpoint;
    const char *server_key_path; /* the server's public key, pinned (CURVE) */
    const char *key_path;        /* the client's key pair (CURVE) */
    bool insecure;               /* no CURVE: only for local endpoints */
    size_t queue_max;            /* messages kept while disconnected (default 16) */
};

struct transport_client_stats {
    uint64_t sent;
    uint64_t dropped; /* oldest messages dropped from a full queue */
    uint64_t handshake_failures;
    uint64_t connects;
    uint64_t disconnects;
    bool connected;
};

int transport_client_open(const struct transport_client_options *opts,
                          struct transport_client **out,
                          char *err,
                          size_t err_len);

void transport_client_close(struct transport_client **client);

/* Queue a copy of buf and hand what the connection takes to ZeroMQ. Never blocks. */
int transport_client_send(struct transport_client *client, const uint8_t *buf, size_t len);

/* Wait up to timeout_ms for a message from the server (queued messages are flushed meanwhile).
 * Returns 1 with a new buffer, 0 on timeout, or -errno. */
int
transport_client_recv(struct transport_client *client, int timeout_ms, uint8_t **buf, size_t *len);

void transport_client_get_stats(struct transport_client *client,
                                struct transport_client_stats *stats);

/* Free the process's ZeroMQ context once every socket is closed (at exit). */
void transport_shutdown(void);

#endif /* MEMSCHED_COMMON_TRANSPORT_H */

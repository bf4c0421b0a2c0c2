/*
 * store.h - what the coordinator must keep across restarts, in SQLite: the policy history
 * (versioned, scoped, with who, when and why), each agent's ack of each version, and the hosts
 * ever seen, and the newest fleet events (STORE_EVENTS_MAX). The only module that touches SQLite;
 * none of its types leave store.c.
 *
 * Invariants:
 *  - a row is stored only after scope_parse() and the bounds of its keys accept it (the caller
 *    checks the layered result per host: store_policy_for_host with `instead`), and a
 *    layered policy is handed out only when policy_validate() accepts it; a row's
 *    version is global across scopes, starts at 1, only grows and is never reused within one
 *    database file: its insert is synced to disk (synchronous=FULL for that commit) before
 *    anyone can push it. A database restored from a copy or replaced hands numbers out again, so
 *    a version means something only together with the store's epoch, a random number drawn at
 *    every open, which pushes and hellos carry;
 *  - policies layer: each row of a scope holds only the keys set at that scope (its `keys`);
 *    the newest row of a scope is the scope's policy (a row that sets no key stands for a
 *    deleted scope). A host's effective policy is, key by key: the defaults, under the fleet's,
 *    under those of the label:K=V scopes whose label it carries, under its host:ID scope's.
 *    When two of its label scopes set the same key, the scope whose newest row has the higher
 *    version wins (the one changed last; store_effective.sources says which). Its effective
 *    version is the highest version among the newest rows of every scope that matches it, set
 *    or deleted, so any change to one of them gives it a higher version than any it held;
 *  - rows written before layering (schema 2) hold every key: they read as "all keys set";
 *  - for one host and one version the last ack recorded wins;
 *  - times kept here are wall-clock milliseconds (they outlive the process), given by the caller.
 *
 * Every function returns 0 or a negative errno, with err saying why: -EINVAL for arguments we
 * refuse (nothing is stored), -ENOENT for nothing found, -EIO for anything SQLite reports
 * (sqlite3_errmsg in err) or a database this build cannot use (corrupt, read-only, a newer
 * schema). The store never crashes on a bad file. Callbacks run while a statement is open: they
 * must not call back into the store; they return 0 to go on, a positive value to stop (the walk
 * returns 0), a negative one to stop with that error.
 */
#ifndef MEMSCHED_COORDINATOR_STORE_H
#define MEMSCHED_COORDINATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "wire.h"

#define STORE_ERR_MAX        512
#define STORE_AUTHOR_MAX     64
#define STORE_SCHEMA_VERSION 3 /* 1 -> 2 (events), 2 -> 3 (policy actions): migrated at open */
#define STORE_ACTION_MAX     32
#define STORE_EVENTS_MAX     1024

struct store;

struct store_policy_entry {
    uint64_t version;
    char scope[WIRE_SCOPE_MAX];
    struct policy policy;          /* the keys set here; the others hold the defaults */
    uint32_t keys;                 /* the keys this scope sets (policy.h key set) */
    char action[STORE_ACTION_MAX]; /* "set", "unset", "delete", "rollback to v3" */
    char author[STORE_AUTHOR_MAX];
    char reason[WIRE_REASON_MAX];
    uint64_t created_at_ms; /* wall clock */
};

/* Where one key of an effective policy comes from. */
struct store_source {
    uint64_t version; /* 0: the default */
    char scope[WIRE_SCOPE_MAX];
};

/* A host's effective policy: the layers merged (see the file comment). */
struct store_effective {
    uint64_t version;           /* the highest among the scopes that match */
    char scope[WIRE_SCOPE_MAX]; /* the scope of that version */
    struct policy policy;
    struct store_source sources[POLICY_KEYS_MAX]; /* indexed like policy_params() */
};

struct store_ack {
    char host_id[WIRE_HOST_ID_MAX];
    uint64_t version;
    bool applied;
    char reason[WIRE_REASON_MAX]; /* why it was refused; "" when applied */
    uint64_t at_ms;               /* wall clock */
};

struct store_host {
    char host_id[WIRE_HOST_ID_MAX];
    const char *labels[WIRE_LABELS_MAX]; /* "KEY=VALUE", borrowed for the callback's duration */
    size_t n_labels;
    uint64_t first_seen_ms; /* wall clock */
    uint64_t last_seen_ms;
    uint64_t policy_version;
};

/* One fleet event as kept: the store does not interpret kind or from (the fleet's enums). */
struct store_event {
    uint64_t seq;   /* the fleet's, 1, 2, ...: carried on across restarts */
    uint64_t at_ms; /* wall clock */
    int kind;
    int from;
    uint64_t policy_version;
    char host_id[WIRE_HOST_ID_MAX];
    char detail[WIRE_REASON_MAX];
};

typedef int (*store_event_cb)(const struct store_event *event, void *ctx);
typedef int (*store_policy_cb)(const struct store_policy_entry *entry, void *ctx);
typedef int (*store_ack_cb)(const struct store_ack *ack, void *ctx);
typedef int (*store_host_cb)(const struct store_host *host, void *ctx);

/* Open the database at path, creating it and its schema when missing (":memory:" works for
 * tests): WAL journal, synchronous=NORMAL (a committed change survives a crash of the process;
 * a power cut may lose the last acks or host rows, never a policy), every statement prepared
 * once, a fresh random epoch. A garbage file, a
 * read-only one or a schema newer than this build gives -EIO and a message naming the path. */
int store_open(const char *path, struct store **store, char *err, size_t err_len);

/* The epoch of this open store: random, non-zero, different at every open. */
uint64_t store_epoch(const struct store *store);

/* Finalise the statements and close; NULL-safe, nulls *store. */
void store_close(struct store **store);

/* Group the writes that follow into one transaction, until store_batch_end(): one commit instead
 * of one per write (10,000 acks or host upserts take ~20 ms instead of ~300 ms). Meant for a
 * burst handled in one pass of the event loop. A batch begun inside another joins it: the
 * outermost end commits (or rolls back, when any of them asked to) all of them. store_policy_add()
 * is not allowed inside one (a version must be durable before it is pushed). */
int store_batch_begin(struct store *store, char *err, size_t err_len);

/* Commit (commit = true) or roll back the batch. A failed commit is rolled back: -EIO. */
int store_batch_end(struct store *store, bool commit, char *err, size_t err_len);

/* Store the keys of p named by keys under scope ("fleet", "label:KEY=VALUE", "host:ID") as
 * the next version, with what was done (action, e.g. "set"), who (author, 1-63 printable
 * characters) and why (reason, printable, may be empty). The values are checked against their
 * bounds (-EINVAL with err naming the key, nothing stored); whether they make a valid policy
 * once layered is the caller's check (store_policy_for_host with `instead`, per host). No keys
 * at all stores a deleted scope. *version receives the new one. */
int store_policy_add(struct store *store,
                     const char *scope,
                     const struct policy *p,
                     uint32_t keys,
                     const char *action,
                     const char *author,
                     const char *reason,
                     uint64_t now_wall_ms,
                     uint64_t *version,
                     char *err,
                     size_t err_len);

/* The policy stored as version. -ENOENT when there is none. */
int store_policy_get(struct store *store,
                     uint64_t version,
                     struct store_policy_entry *entry,
                     char *err,
                     size_t err_len);

/* The newest policy stored under exactly this scope. -ENOENT when there is none. */
int store_policy_latest(struct store *store,
                        const char *scope,
                        struct store_policy_entry *entry,
                        char *err,
                        size_t err_len);

/* The effective policy of a host with this id and labels ("KEY=VALUE"): see the layering in
 * the file comment. With instead (may be NULL), that entry stands for the newest row of its
 * scope, stored or not: what the host would get if it were stored. host_id NULL stands for a
 * host of no host:ID scope (what a fleet or label scope gives on its own). The merged policy passes
 * policy_validate() or this fails with -EINVAL, err naming the host and the key. -ENOENT when no
 * scope covers it (the agent keeps its own config); -EIO for a stored row that is unusable. */
int store_policy_for_host(struct store *store,
                          const char *host_id,
                          const char *const *labels,
                          size_t n_labels,
                          const struct store_policy_entry *instead,
                          struct store_effective *out,
                          char *err,
                          size_t err_len);

/* The newest row of every scope, loaded at once: a policy change checks every host in its
 * scope (twice: before and after), and policy-show and policy-wait read every host, without
 * queries per host (a query costs ~10 us, most of it SQLite's file lock). A snapshot: the store
 * changing later does not change it. */
struct store_layers;

int store_layers_load(struct store *store, struct store_layers **layers, char *err, size_t err_len);

/* NULL-safe, nulls *layers. */
void store_layers_free(struct store_layers **layers);

/* store_policy_for_host() over the loaded rows: the same answer, no I/O. */
int store_layers_for_host(const struct store_layers *layers,
                          const char *host_id,
                          const char *const *labels,
                          size_t n_labels,
                          const struct store_policy_entry *instead,
                          struct store_effective *out,
                          char *err,
                          size_t err_len);

/* Walk the policies of one scope (NULL: all), newest first. */
int store_policy_history(struct store *store,
                         const char *scope,
                         store_policy_cb cb,
                         void *ctx,
                         char *err,
                         size_t err_len);

/* Record host_id's answer to version (the last answer for a host and version wins). */
int store_ack_record(struct store *store,
                     const char *host_id,
                     uint64_t version,
                     bool applied,
                     const char *reason,
                     uint64_t at_wall_ms,
                     char *err,
                     size_t err_len);

/* Walk the acks of one version, sorted by host id. */
int store_acks_for_version(
    struct store *store, uint64_t version, store_ack_cb cb, void *ctx, char *err, size_t err_len);

/* Every host's ack of the highest version it answered (store_ack_for_host's), sorted by host
 * id: one walk instead of a query per host. */
int store_acks_newest(struct store *store, store_ack_cb cb, void *ctx, char *err, size_t err_len);

/* The host's ack of the highest version it answered. -ENOENT when it never answered. */
int store_ack_for_host(
    struct store *store, const char *host_id, struct store_ack *ack, char *err, size_t err_len);

/* Insert or update a host: labels and policy version are replaced, last_seen set, first_seen
 * kept from the first time. Meant for hellos (and a periodic refresh), not for every report. */
int store_host_upsert(struct store *store,
                      const char *host_id,
                      const char *const *labels,
                      size_t n_labels,
                      uint64_t seen_at_wall_ms,
                      uint64_t policy_version,
                      char *err,
                      size_t err_len);

/* Forget a host: its row and its acks (an operator removed it, or it stayed down past the
 * retention). -ENOENT when the store had nothing of it. */
int store_host_forget(struct store *store, const char *host_id, char *err, size_t err_len);

/* Walk every host ever seen (and not forgotten), sorted by id. */
int store_hosts_list(struct store *store, store_host_cb cb, void *ctx, char *err, size_t err_len);

/* Keep one event (a seq kept already is replaced); events at or below seq - STORE_EVENTS_MAX
 * are dropped, so the table stays bounded. -EINVAL for a bad host id, seq 0 or unprintable
 * detail. Meant inside a batch when there are many. */
int
store_event_add(struct store *store, const struct store_event *event, char *err, size_t err_len);

/* Walk the events kept, oldest first. */
int store_events_list(struct store *store, store_event_cb cb, void *ctx, char *err, size_t err_len);

#endif /* MEMSCHED_COORDINATOR_STORE_H */

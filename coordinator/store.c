/*
 * store.c - the policy history, acks and known hosts in SQLite; the only file that includes it.
 *
 * Owns the connection and one prepared statement per query, made at open and reset after each
 * use, so no SQL is compiled on the coordinator's hot paths. A policy is kept as the key = value
 * text of the parameter table (policy_get over policy_params), the form operators read and that
 * config_parse_text() reads back, so adding a parameter needs no migration: a stored policy
 * without it takes the default. Reading a stored policy validates it again: a row edited by hand
 * into something invalid is reported (-EIO) and never handed out.
 *
 * Invariants: every public function leaves every statement reset and unbound; while a callback
 * runs, `walking` is set and re-entering the store is an API misuse (assert).
 */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config.h"
#include "scope.h"
#include "util.h"

#define POLICY_TEXT_MAX 2048
#define LABELS_TEXT_MAX (WIRE_LABELS_MAX * SCOPE_LABEL_MAX)
#define BUSY_TIMEOUT_MS 5000

enum stmt {
    STMT_POLICY_INSERT = 0,
    STMT_POLICY_GET,
    STMT_POLICY_LATEST,
    STMT_HISTORY_ALL,
    STMT_HISTORY_SCOPE,
    STMT_NEWEST_PER_SCOPE,
    STMT_ACK_UPSERT,
    STMT_ACKS_FOR_VERSION,
    STMT_ACK_FOR_HOST,
    STMT_ACKS_NEWEST,
    STMT_HOST_UPSERT,
    STMT_HOSTS_LIST,
    STMT_HOST_DELETE,
    STMT_ACKS_DELETE_HOST,
    STMT_EVENT_INSERT,
    STMT_EVENTS_TRIM,
    STMT_EVENTS_LIST,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_COUNT,
};

#define POLICY_COLUMNS "version, scope, policy, author, reason, created_at, action"
#define ACK_COLUMNS    "host_id, version, applied, reason, at"
#define EVENT_COLUMNS  "seq, at, kind, host_id, from_state, policy_version, detail"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_POLICY_INSERT] =
        ("INSERT INTO policies (scope, policy, author, reason, created_at, action) "
         "VALUES (?, ?, ?, ?, ?, ?)"),
    [STMT_POLICY_GET] = "SELECT " POLICY_COLUMNS " FROM policies WHERE version = ?",
    [STMT_POLICY_LATEST] =
        "SELECT " POLICY_COLUMNS " FROM policies WHERE scope = ? ORDER BY version DESC LIMIT 1",
    [STMT_HISTORY_ALL] = "SELECT " POLICY_COLUMNS " FROM policies ORDER BY version DESC",
    [STMT_HISTORY_SCOPE] =
        "SELECT " POLICY_COLUMNS " FROM policies WHERE scope = ? ORDER BY version DESC",
    [STMT_NEWEST_PER_SCOPE] = ("SELECT " POLICY_COLUMNS " FROM policies WHERE version IN "
                               "(SELECT max(version) FROM policies GROUP BY scope) ORDER BY scope"),
    [STMT_ACK_UPSERT] = ("INSERT INTO acks (" ACK_COLUMNS ") VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (host_id, version) DO UPDATE SET "
                         "applied = excluded.applied, reason = excluded.reason, at = excluded.at"),
    [STMT_ACKS_FOR_VERSION] = "SELECT " ACK_COLUMNS " FROM acks WHERE version = ? ORDER BY host_id",
    [STMT_ACK_FOR_HOST] =
        "SELECT " ACK_COLUMNS " FROM acks WHERE host_id = ? ORDER BY version DESC LIMIT 1",
    /* SQLite takes a bare column's value from the row MAX() chose. */
    [STMT_ACKS_NEWEST] = "SELECT host_id, MAX(version), applied, reason, at FROM acks "
                         "GROUP BY host_id ORDER BY host_id",
    [STMT_HOST_UPSERT] =
        ("INSERT INTO hosts (host_id, labels, first_seen, last_seen, policy_version) "
         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (host_id) DO UPDATE SET labels = excluded.labels, "
         "last_seen = excluded.last_seen, policy_version = excluded.policy_version"),
    [STMT_HOSTS_LIST] = ("SELECT host_id, labels, first_seen, last_seen, policy_version "
                         "FROM hosts ORDER BY host_id"),
    [STMT_HOST_DELETE] = "DELETE FROM hosts WHERE host_id = ?",
    [STMT_ACKS_DELETE_HOST] = "DELETE FROM acks WHERE host_id = ?",
    [STMT_EVENT_INSERT] = ("INSERT OR REPLACE INTO events (" EVENT_COLUMNS ") "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)"),
    [STMT_EVENTS_TRIM] = "DELETE FROM events WHERE seq <= ?",
    [STMT_EVENTS_LIST] = "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq",
    [STMT_BEGIN] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
};

/* Version 1; migrations[] takes it to STORE_SCHEMA_VERSION. A later schema adds its migration
 * there and bumps STORE_SCHEMA_VERSION. */
static const char schema_sql[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE policies ("
    "  version INTEGER PRIMARY KEY AUTOINCREMENT," /* AUTOINCREMENT: never reused */
    "  scope TEXT NOT NULL, policy TEXT NOT NULL, author TEXT NOT NULL, reason TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX policies_by_scope ON policies (scope, version);"
    "CREATE TABLE acks ("
    "  host_id TEXT NOT NULL, version INTEGER NOT NULL, applied INTEGER NOT NULL,"
    "  reason TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (host_id, version));"
    "CREATE INDEX acks_by_version ON acks (version, host_id);"
    "CREATE TABLE hosts ("
    "  host_id TEXT PRIMARY KEY, labels TEXT NOT NULL, first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL, policy_version INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (1);";

/* migrations[i] takes a database from version i + 1 to i + 2, in the transaction that checks
 * the schema. */
static const char *const migrations[STORE_SCHEMA_VERSION - 1] = {
    /* 2: the fleet's events, kept across restarts (the newest STORE_EVENTS_MAX). */
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind INTEGER NOT NULL,"
    "  host_id TEXT NOT NULL, from_state INTEGER NOT NULL, policy_version INTEGER NOT NULL,"
    "  detail TEXT NOT NULL);"
    "UPDATE schema_version SET version = 2;",
    /* 3: policies layer. A row holds only the keys set at its scope (older rows hold them all,
     * and read as all set) and says what was done: set, unset, delete, rollback. */
    "ALTER TABLE policies ADD COLUMN action TEXT NOT NULL DEFAULT 'set';"
    "UPDATE schema_version SET version = 3;",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT_COUNT];
    char *path;
    bool walking;         /* a callback is running */
    unsigned batch_depth; /* store_batch_begin()s not ended yet: one transaction for them all */
    bool batch_rollback;  /* an inner batch asked to roll back: the outermost end does */
    uint64_t epoch;       /* random, drawn at open: versions are unique only within one epoch */
};

/* SQLite said no: -EIO with its message. */
static int
db_fail(const struct store *s, char *err, size_t err_len, const char *what)
{
    snprintf(err, err_len, "store: %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    return -EIO;
}

static sqlite3_stmt *
stmt_begin(struct store *s, enum stmt which)
{
    assert(!s->walking); /* a callback called back into the store */
    return s->stmts[which];
}

static void
stmt_end(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Printable text of 0 (or 1 when !allow_empty) to max - 1 bytes. */
static bool
valid_text(const char *s, size_t max, bool allow_empty)
{
    size_t n = 0;

    if (!s)
        return allow_empty;
    for (; s[n]; n++) {
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n + 1 >= max)
            return false;
    }
    return allow_empty || n > 0;
}

/* SQLite integers are signed; larger values would sort wrongly, so they are refused. */
static bool
fits_i64(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX;
}

static void
copy_column(sqlite3_stmt *st, int col, char *out, size_t out_len)
{
    const unsigned char *text = sqlite3_column_text(st, col);

    snprintf(out, out_len, "%s", text ? (const char *)text : "");
}

static uint64_t
u64_column(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);

    return v < 0 ? 0 : (uint64_t)v;
}

/* ---- policy text ---- */

static void
policy_to_text(const struct policy *p, uint32_t keys, char *buf, size_t len)
{
    size_t n_params, used = 0;
    const struct config_key *params = policy_params(&n_params);
    char value[64];

    buf[0] = '\0';
    for (size_t i = 0; i < n_params; i++) {
        if (!(keys & (UINT32_C(1) << i)))
            continue;
        policy_get(p, params[i].name, value, sizeof(value));
        used += (size_t)snprintf(buf + used, len - used, "%s = %s\n", params[i].name, value);
        assert(used < len); /* the table is ours: POLICY_TEXT_MAX holds it */
    }
}

/* A row's text parsed: its values over the defaults, and which keys it names. */
struct parsed_row {
    struct policy policy;
    uint32_t keys;
};

static int
set_param(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct parsed_row *row = ctx;
    int rc = policy_set(&row->policy, key, value, err, err_len);

    if (rc == 0)
        row->keys |= policy_key_bit(key);
    return rc;
}

/* Each value is checked against its bounds; whether the layers make a valid policy is
 * store_policy_for_host's check (a row alone is only part of one). */
static int
policy_from_text(
    const char *text, uint64_t version, struct store_policy_entry *e, char *err, size_t err_len)
{
    char name[32], why[POLICY_ERR_MAX + CONFIG_ERR_MAX];
    struct parsed_row row = {.keys = 0};

    snprintf(name, sizeof(name), "policy v%" PRIu64, version);
    policy_init_defaults(&row.policy);
    if (config_parse_text(text, name, set_param, &row, why, sizeof(why)) < 0 ||
        config_check_bounds(policy_table(), &row.policy, why, sizeof(why)) < 0) {
        snprintf(err, err_len, "store: stored %s is unusable: %s", name, why);
        return -EIO;
    }
    e->policy = row.policy;
    e->keys = row.keys;
    return 0;
}

/* Read the policy row st stands on into *e. */
static int
policy_row(sqlite3_stmt *st, struct store_policy_entry *e, char *err, size_t err_len)
{
    const unsigned char *text;

    memset(e, 0, sizeof(*e));
    e->version = u64_column(st, 0);
    copy_column(st, 1, e->scope, sizeof(e->scope));
    text = sqlite3_column_text(st, 2);
    copy_column(st, 3, e->author, sizeof(e->author));
    copy_column(st, 4, e->reason, sizeof(e->reason));
    e->created_at_ms = u64_column(st, 5);
    copy_column(st, 6, e->action, sizeof(e->action));
    return policy_from_text(text ? (const char *)text : "", e->version, e, err, err_len);
}

/* ---- open and close ---- */

static int
exec(struct store *s, const char *sql, const char *what, char *err, size_t err_len)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, err_len, what);
    return 0;
}

/* One integer from a query of one row while checking the schema, or -ENOENT for none. */
static int
query_int(struct store *s, const char *sql, sqlite3_int64 *out, char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, err_len, "checking the schema");
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = db_fail(s, err, err_len, "checking the schema");
    sqlite3_finalize(st);
    return rc;
}

static int
set_journal_wal(struct store *s, char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, err_len, "setting a WAL journal");
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, err_len, "setting a WAL journal");
    } else {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        /* "memory" is what an in-memory database (tests) can have. */
        if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
            snprintf(err, err_len, "store: %s: cannot use a WAL journal (got %s)", s->path,
                     mode ? mode : "nothing");
            rc = -EIO;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Create the schema in a fresh file, or check the one found. */
static int
schema_ensure(struct store *s, char *err, size_t err_len)
{
    sqlite3_int64 has_version = 0, n_tables = 0, version = 0;
    int rc;

    rc = exec(s, "BEGIN IMMEDIATE", "checking the schema", err, err_len);
    if (rc < 0)
        return rc;
    rc = query_int(s,
                   "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                   "name = 'schema_version'",
                   &has_version, err, err_len);
    if (rc == 0)
        rc = query_int(s,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name NOT LIKE 'sqlite_%'",
                       &n_tables, err, err_len);
    if (rc < 0)
        goto out;
    if (!has_version && n_tables > 0) {
        snprintf(err, err_len, "store: %s holds tables but is not a memsched database", s->path);
        rc = -EIO;
        goto out;
    }
    if (!has_version)
        rc = exec(s, schema_sql, "creating the schema", err, err_len);
    if (rc == 0)
        rc = query_int(s, "SELECT version FROM schema_version", &version, err, err_len);
    while (rc == 0 && version >= 1 && version < STORE_SCHEMA_VERSION) {
        rc = exec(s, migrations[version - 1], "migrating the schema", err, err_len);
        if (rc == 0)
            rc = query_int(s, "SELECT version FROM schema_version", &version, err, err_len);
    }
    if (rc == -ENOENT || (rc == 0 && version != STORE_SCHEMA_VERSION)) {
        snprintf(err, err_len, "store: %s has schema version %lld, this build knows %d", s->path,
                 rc == 0 ? (long long)version : 0LL, STORE_SCHEMA_VERSION);
        rc = -EIO;
    }
out:
    if (rc == 0)
        return exec(s, "COMMIT", "creating the schema", err, err_len);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
store_open(const char *path, struct store **store, char *err, size_t err_len)
{
    struct store *s;
    int rc = 0;

    if (!path || !*path)
        return util_fail(-EINVAL, err, err_len, "store: no database path");
    s = util_xcalloc(1, sizeof(*s));
    s->path = util_xstrdup(path);
    /* Created 0600 from the start: SQLite would make it 0644 (umask), and makes the WAL and
     * shared-memory files with the database file's mode. An existing file keeps its mode. */
    if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0)
            close(fd); /* else sqlite3_open_v2 says why, below */
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (s->db)
            db_fail(s, err, err_len, "open");
        else
            snprintf(err, err_len, "store: %s: out of memory", path);
        rc = -EIO;
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* SQLite falls back to reading when it may not write: a store we cannot write to would
     * lose every policy set, so refuse at once. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(err, err_len, "store: %s: cannot be opened for writing (permissions?)", path);
        rc = -EIO;
        goto out;
    }
    rc = set_journal_wal(s, err, err_len);
    if (rc == 0)
        rc = exec(s, "PRAGMA synchronous = NORMAL", "synchronous", err, err_len);
    if (rc == 0)
        rc = schema_ensure(s, err, err_len);
    if (rc == 0 && (getrandom(&s->epoch, sizeof(s->epoch), 0) != sizeof(s->epoch) || !s->epoch)) {
        snprintf(err, err_len, "store: %s: no random epoch: %s", path, strerror(errno));
        rc = -EIO;
    }
    for (int i = 0; i < STMT_COUNT && rc == 0; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i],
                               NULL) != SQLITE_OK)
            rc = db_fail(s, err, err_len, stmt_sql[i]);
    }
out:
    if (rc < 0) {
        store_close(&s);
        return rc;
    }
    *store = s;
    return 0;
}

void
store_close(struct store **store)
{
    struct store *s;

    if (!store || !*store)
        return;
    s = *store;
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close_v2(s->db); /* the last connection checkpoints the WAL into the file */
    free(s->path);
    free(s);
    *store = NULL;
}

/* ---- batches ---- */

static int
step_done(struct store *s, enum stmt which, char *err, size_t err_len, const char *what)
{
    sqlite3_stmt *st = stmt_begin(s, which);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, err_len, what);

    stmt_end(st);
    return rc;
}

int
store_batch_begin(struct store *s, char *err, size_t err_len)
{
    int rc;

    if (s->batch_depth > 0) { /* inside another: its transaction holds this one's writes */
        s->batch_depth++;
        return 0;
    }
    rc = step_done(s, STMT_BEGIN, err, err_len, "beginning a batch");
    if (rc == 0) {
        s->batch_depth = 1;
        s->batch_rollback = false;
    }
    return rc;
}

int
store_batch_end(struct store *s, bool commit, char *err, size_t err_len)
{
    int rc = 0;

    assert(s->batch_depth > 0);
    if (!commit)
        s->batch_rollback = true;
    if (--s->batch_depth > 0)
        return 0; /* the outermost batch commits or rolls back */
    commit = !s->batch_rollback;
    if (commit)
        rc = step_done(s, STMT_COMMIT, err, err_len, "committing a batch");
    /* A failed COMMIT leaves the transaction open: roll it back so the store stays usable. */
    if (!commit || (rc < 0 && !sqlite3_get_autocommit(s->db))) {
        char ignored[STORE_ERR_MAX];
        step_done(s, STMT_ROLLBACK, ignored, sizeof(ignored), "rolling back a batch");
    }
    return rc;
}

/* ---- policies ---- */

int
store_policy_add(struct store *s,
                 const char *scope,
                 const struct policy *p,
                 uint32_t keys,
                 const char *action,
                 const char *author,
                 const char *reason,
                 uint64_t now_wall_ms,
                 uint64_t *version,
                 char *err,
                 size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_POLICY_INSERT);
    struct scope parsed;
    char text[POLICY_TEXT_MAX];
    int rc;

    /* Its version must be durable before anyone pushes it: a rolled-back batch could hand the
     * same number to another policy. */
    assert(s->batch_depth == 0);
    if (scope_parse(scope, &parsed) < 0)
        return util_fail(-EINVAL, err, err_len,
                         "store: scope '%s' is not fleet, label:KEY=VALUE or host:ID",
                         scope ? scope : "");
    struct policy bounded;
    policy_init_defaults(&bounded);
    policy_overlay(&bounded, p, keys);
    rc = config_check_bounds(policy_table(), &bounded, err, err_len);
    if (rc < 0)
        return rc;
    if ((keys & ~policy_keys_all()) || !valid_text(action, STORE_ACTION_MAX, false))
        return util_fail(-EINVAL, err, err_len, "store: bad key set or action");
    if (!valid_text(author, STORE_AUTHOR_MAX, false))
        return util_fail(-EINVAL, err, err_len, "store: author must be 1-%d printable characters",
                         STORE_AUTHOR_MAX - 1);
    if (!valid_text(reason, WIRE_REASON_MAX, true))
        return util_fail(-EINVAL, err, err_len,
                         "store: reason must be at most %d printable characters",
                         WIRE_REASON_MAX - 1);
    if (!fits_i64(now_wall_ms))
        return util_fail(-EINVAL, err, err_len, "store: time %" PRIu64 " out of range",
                         now_wall_ms);
    policy_to_text(p, keys, text, sizeof(text));
    /* synchronous=NORMAL in WAL mode may lose the last commits on a power cut, and AUTOINCREMENT
     * would then hand the same number out again: this one commit is synced (FULL). */
    rc = exec(s, "PRAGMA synchronous = FULL", "synchronous", err, err_len);
    if (rc < 0)
        return rc;
    if (sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, author, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, reason ? reason : "", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, (sqlite3_int64)now_wall_ms) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, action, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, err_len, "adding a policy");
    } else {
        *version = (uint64_t)sqlite3_last_insert_rowid(s->db);
    }
    stmt_end(st);
    char ignored[STORE_ERR_MAX];
    exec(s, "PRAGMA synchronous = NORMAL", "synchronous", ignored, sizeof(ignored));
    return rc;
}

/* Step st once into *e: 0, -ENOENT for no row, or -EIO. */
static int
policy_one(
    struct store *s, sqlite3_stmt *st, struct store_policy_entry *e, char *err, size_t err_len)
{
    int step = sqlite3_step(st), rc;

    if (step == SQLITE_ROW)
        rc = policy_row(st, e, err, err_len);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = db_fail(s, err, err_len, "reading a policy");
    stmt_end(st);
    return rc;
}

int
store_policy_get(
    struct store *s, uint64_t version, struct store_policy_entry *e, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_POLICY_GET);

    if (!fits_i64(version))
        return util_fail(-EINVAL, err, err_len, "store: version %" PRIu64 " out of range", version);
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)version) != SQLITE_OK) {
        stmt_end(st);
        return db_fail(s, err, err_len, "reading a policy");
    }
    int rc = policy_one(s, st, e, err, err_len);
    if (rc == -ENOENT)
        snprintf(err, err_len, "store: no policy version %" PRIu64, version);
    return rc;
}

int
store_policy_latest(
    struct store *s, const char *scope, struct store_policy_entry *e, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_POLICY_LATEST);

    if (!scope)
        return util_fail(-EINVAL, err, err_len, "store: no scope");
    if (sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC) != SQLITE_OK) {
        stmt_end(st);
        return db_fail(s, err, err_len, "reading a policy");
    }
    int rc = policy_one(s, st, e, err, err_len);
    if (rc == -ENOENT)
        snprintf(err, err_len, "store: no policy for scope %s", scope);
    return rc;
}

/* Where the newest row of a scope comes from: a query, or rows loaded at once. 0, -ENOENT for
 * none, or -EIO. */
typedef int (*newest_fn)(
    void *from, const char *scope, struct store_policy_entry *e, char *err, size_t err_len);

/* The newest row of scope into layers[*n] (when there is one), or instead when it stands for
 * that scope. */
static int
layer_add(newest_fn newest,
          void *from,
          const char *scope,
          const struct store_policy_entry *instead,
          struct store_policy_entry *layers,
          size_t *n,
          char *err,
          size_t err_len)
{
    if (instead && strcmp(instead->scope, scope) == 0) {
        layers[(*n)++] = *instead;
        return 0;
    }
    int rc = newest(from, scope, &layers[*n], err, err_len);
    if (rc == 0)
        (*n)++;
    return rc == -ENOENT ? 0 : rc;
}

/* Labels layer in the order of their versions: the newest setting of a key wins. */
static int
compare_layer_versions(const void *pa, const void *pb)
{
    const struct store_policy_entry *a = pa, *b = pb;

    return a->version < b->version ? -1 : a->version > b->version;
}

/* The defaults, then each layer in order: values, where each key came from, the top version. */
static void
layers_merge(const struct store_policy_entry *layers, size_t n, struct store_effective *out)
{
    size_t n_params;

    policy_params(&n_params);
    memset(out, 0, sizeof(*out));
    policy_init_defaults(&out->policy);
    for (size_t i = 0; i < n_params; i++)
        snprintf(out->sources[i].scope, sizeof(out->sources[i].scope), "defaults");
    for (size_t l = 0; l < n; l++) {
        policy_overlay(&out->policy, &layers[l].policy, layers[l].keys);
        for (size_t i = 0; i < n_params; i++) {
            if (layers[l].keys & (UINT32_C(1) << i)) {
                out->sources[i].version = layers[l].version;
                snprintf(out->sources[i].scope, sizeof(out->sources[i].scope), "%s",
                         layers[l].scope);
            }
        }
        if (layers[l].version >= out->version) {
            out->version = layers[l].version;
            snprintf(out->scope, sizeof(out->scope), "%s", layers[l].scope);
        }
    }
}

/* The layering (store.h): fleet, the host's labels by version, its host scope; merged and
 * validated. */
static int
effective(newest_fn newest,
          void *from,
          const char *host_id,
          const char *const *labels,
          size_t n_labels,
          const struct store_policy_entry *instead,
          struct store_effective *out,
          char *err,
          size_t err_len)
{
    struct store_policy_entry *layers;
    char scope[WIRE_SCOPE_MAX], why[POLICY_ERR_MAX];
    size_t n = 0;
    int rc;

    if ((host_id && !wire_host_id_valid(host_id)) || n_labels > WIRE_LABELS_MAX)
        return util_fail(-EINVAL, err, err_len, "store: bad host id");
    layers = util_xcalloc(n_labels + 2, sizeof(*layers));
    rc = layer_add(newest, from, "fleet", instead, layers, &n, err, err_len);
    size_t first_label = n;
    for (size_t i = 0; rc == 0 && i < n_labels; i++) {
        /* A label longer than any scope could not have been stored. */
        if (labels[i] &&
            (size_t)snprintf(scope, sizeof(scope), "label:%s", labels[i]) < sizeof(scope))
            rc = layer_add(newest, from, scope, instead, layers, &n, err, err_len);
    }
    qsort(layers + first_label, n - first_label, sizeof(*layers), compare_layer_versions);
    if (host_id)
        snprintf(scope, sizeof(scope), "host:%s", host_id);
    if (rc == 0 && host_id)
        rc = layer_add(newest, from, scope, instead, layers, &n, err, err_len);
    if (rc == 0 && n == 0)
        rc = util_fail(-ENOENT, err, err_len, "store: no policy covers host %s",
                       host_id ? host_id : "(none)");
    if (rc == 0) {
        layers_merge(layers, n, out);
        if (policy_validate(&out->policy, why, sizeof(why)) < 0)
            rc = util_fail(-EINVAL, err, err_len, "%s%s: %s", host_id ? "host " : "layered",
                           host_id ? host_id : "", why);
    }
    free(layers);
    return rc;
}

static int
newest_queried(
    void *from, const char *scope, struct store_policy_entry *e, char *err, size_t err_len)
{
    return store_policy_latest(from, scope, e, err, err_len);
}

int
store_policy_for_host(struct store *s,
                      const char *host_id,
                      const char *const *labels,
                      size_t n_labels,
                      const struct store_policy_entry *instead,
                      struct store_effective *out,
                      char *err,
                      size_t err_len)
{
    return effective(newest_queried, s, host_id, labels, n_labels, instead, out, err, err_len);
}

/* ---- the newest row of every scope, in memory ---- */

struct store_layers {
    struct store_policy_entry *rows; /* sorted by scope (strcmp) */
    size_t n, cap;
};

int
store_layers_load(struct store *s, struct store_layers **out, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_NEWEST_PER_SCOPE);
    struct store_layers *l = util_xcalloc(1, sizeof(*l));
    int rc = 0, step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 16;
            l->rows = util_xrealloc(l->rows, l->cap, sizeof(*l->rows));
        }
        rc = policy_row(st, &l->rows[l->n], err, err_len);
        if (rc < 0)
            break;
        l->n++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "reading the policies");
    stmt_end(st);
    /* SQLite's ORDER BY compares text as memcmp does, which is strcmp's order for our text. */
    if (rc < 0)
        store_layers_free(&l);
    *out = l;
    return rc;
}

void
store_layers_free(struct store_layers **layers)
{
    if (!layers || !*layers)
        return;
    free((*layers)->rows);
    free(*layers);
    *layers = NULL;
}

static int
compare_scope(const void *key, const void *row)
{
    return strcmp(key, ((const struct store_policy_entry *)row)->scope);
}

static int
newest_loaded(
    void *from, const char *scope, struct store_policy_entry *e, char *err, size_t err_len)
{
    const struct store_layers *l = from;
    const struct store_policy_entry *found =
        l->n ? bsearch(scope, l->rows, l->n, sizeof(*l->rows), compare_scope) : NULL;

    (void)err;
    (void)err_len;
    if (!found)
        return -ENOENT;
    *e = *found;
    return 0;
}

int
store_layers_for_host(const struct store_layers *layers,
                      const char *host_id,
                      const char *const *labels,
                      size_t n_labels,
                      const struct store_policy_entry *instead,
                      struct store_effective *out,
                      char *err,
                      size_t err_len)
{
    return effective(newest_loaded, (void *)layers, host_id, labels, n_labels, instead, out, err,
                     err_len);
}

int
store_policy_history(
    struct store *s, const char *scope, store_policy_cb cb, void *ctx, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, scope ? STMT_HISTORY_SCOPE : STMT_HISTORY_ALL);
    struct store_policy_entry e;
    int rc = 0, step;

    if (scope && sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC) != SQLITE_OK) {
        stmt_end(st);
        return db_fail(s, err, err_len, "reading the history");
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = policy_row(st, &e, err, err_len);
        if (rc < 0)
            break;
        s->walking = true;
        rc = cb(&e, ctx);
        s->walking = false;
        if (rc != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "reading the history");
    stmt_end(st);
    return rc < 0 ? rc : 0;
}

/* ---- acks ---- */

int
store_ack_record(struct store *s,
                 const char *host_id,
                 uint64_t version,
                 bool applied,
                 const char *reason,
                 uint64_t at_wall_ms,
                 char *err,
                 size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_ACK_UPSERT);
    int rc = 0;

    if (!host_id || !wire_host_id_valid(host_id))
        return util_fail(-EINVAL, err, err_len, "store: bad host id");
    if (version == 0 || !fits_i64(version) || !fits_i64(at_wall_ms))
        return util_fail(-EINVAL, err, err_len,
                         "store: ack of version %" PRIu64 " at %" PRIu64 " out of range", version,
                         at_wall_ms);
    if (!valid_text(reason, WIRE_REASON_MAX, true))
        return util_fail(-EINVAL, err, err_len,
                         "store: ack reason must be at most %d printable characters",
                         WIRE_REASON_MAX - 1);
    if (sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (sqlite3_int64)version) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, applied) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, reason ? reason : "", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, (sqlite3_int64)at_wall_ms) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "recording an ack");
    stmt_end(st);
    return rc;
}

static void
ack_row(sqlite3_stmt *st, struct store_ack *a)
{
    memset(a, 0, sizeof(*a));
    copy_column(st, 0, a->host_id, sizeof(a->host_id));
    a->version = u64_column(st, 1);
    a->applied = sqlite3_column_int(st, 2) != 0;
    copy_column(st, 3, a->reason, sizeof(a->reason));
    a->at_ms = u64_column(st, 4);
}

/* Hand every row of st, an ack query with its parameters bound, to cb. */
static int
acks_walk(struct store *s, sqlite3_stmt *st, store_ack_cb cb, void *ctx, char *err, size_t err_len)
{
    struct store_ack a;
    int rc = 0, step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        ack_row(st, &a);
        s->walking = true;
        rc = cb(&a, ctx);
        s->walking = false;
        if (rc != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "reading acks");
    stmt_end(st);
    return rc < 0 ? rc : 0;
}

int
store_acks_for_version(
    struct store *s, uint64_t version, store_ack_cb cb, void *ctx, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_ACKS_FOR_VERSION);

    if (!fits_i64(version))
        return util_fail(-EINVAL, err, err_len, "store: version %" PRIu64 " out of range", version);
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)version) != SQLITE_OK) {
        stmt_end(st);
        return db_fail(s, err, err_len, "reading acks");
    }
    return acks_walk(s, st, cb, ctx, err, err_len);
}

int
store_acks_newest(struct store *s, store_ack_cb cb, void *ctx, char *err, size_t err_len)
{
    return acks_walk(s, stmt_begin(s, STMT_ACKS_NEWEST), cb, ctx, err, err_len);
}

int
store_ack_for_host(
    struct store *s, const char *host_id, struct store_ack *a, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_ACK_FOR_HOST);
    int rc = 0, step;

    if (!host_id || !wire_host_id_valid(host_id))
        return util_fail(-EINVAL, err, err_len, "store: bad host id");
    if (sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        stmt_end(st);
        return db_fail(s, err, err_len, "reading acks");
    }
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        ack_row(st, a);
    } else if (step == SQLITE_DONE) {
        snprintf(err, err_len, "store: host %s never answered a policy", host_id);
        rc = -ENOENT;
    } else {
        rc = db_fail(s, err, err_len, "reading acks");
    }
    stmt_end(st);
    return rc;
}

/* ---- events ---- */

int
store_event_add(struct store *s, const struct store_event *e, char *err, size_t err_len)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (!wire_host_id_valid(e->host_id))
        return util_fail(-EINVAL, err, err_len, "store: event for a bad host id");
    if (e->seq == 0 || !fits_i64(e->seq) || !fits_i64(e->at_ms) || !fits_i64(e->policy_version))
        return util_fail(-EINVAL, err, err_len, "store: event %" PRIu64 " out of range", e->seq);
    if (!valid_text(e->detail, WIRE_REASON_MAX, true))
        return util_fail(-EINVAL, err, err_len,
                         "store: event detail must be at most %d printable characters",
                         WIRE_REASON_MAX - 1);
    st = stmt_begin(s, STMT_EVENT_INSERT);
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)e->seq) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (sqlite3_int64)e->at_ms) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, e->kind) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, e->host_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int(st, 5, e->from) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, (sqlite3_int64)e->policy_version) != SQLITE_OK ||
        sqlite3_bind_text(st, 7, e->detail, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "recording an event");
    stmt_end(st);
    if (rc < 0 || e->seq <= STORE_EVENTS_MAX)
        return rc;
    /* Only the newest are kept: the table never grows past STORE_EVENTS_MAX rows. */
    st = stmt_begin(s, STMT_EVENTS_TRIM);
    if (sqlite3_bind_int64(st, 1, (sqlite3_int64)(e->seq - STORE_EVENTS_MAX)) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "trimming events");
    stmt_end(st);
    return rc;
}

int
store_events_list(struct store *s, store_event_cb cb, void *ctx, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_EVENTS_LIST);
    struct store_event e;
    int rc = 0, step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&e, 0, sizeof(e));
        e.seq = u64_column(st, 0);
        e.at_ms = u64_column(st, 1);
        e.kind = sqlite3_column_int(st, 2);
        copy_column(st, 3, e.host_id, sizeof(e.host_id));
        e.from = sqlite3_column_int(st, 4);
        e.policy_version = u64_column(st, 5);
        copy_column(st, 6, e.detail, sizeof(e.detail));
        s->walking = true;
        rc = cb(&e, ctx);
        s->walking = false;
        if (rc != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "reading events");
    stmt_end(st);
    return rc < 0 ? rc : 0;
}

/* ---- hosts ---- */

int
store_host_upsert(struct store *s,
                  const char *host_id,
                  const char *const *labels,
                  size_t n_labels,
                  uint64_t seen_at_wall_ms,
                  uint64_t policy_version,
                  char *err,
                  size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_HOST_UPSERT);
    char text[LABELS_TEXT_MAX], scope[WIRE_SCOPE_MAX];
    struct scope parsed;
    size_t used = 0;
    int rc = 0;

    if (!host_id || !wire_host_id_valid(host_id))
        return util_fail(-EINVAL, err, err_len, "store: bad host id");
    if (n_labels > WIRE_LABELS_MAX || !fits_i64(seen_at_wall_ms) || !fits_i64(policy_version))
        return util_fail(-EINVAL, err, err_len, "store: host %s: values out of range", host_id);
    text[0] = '\0';
    for (size_t i = 0; i < n_labels; i++) {
        /* A label is valid exactly when label:KEY=VALUE is a valid scope. Labels hold no
         * control characters, so one per line is unambiguous. */
        if ((size_t)snprintf(scope, sizeof(scope), "label:%s", labels[i] ? labels[i] : "") >=
                sizeof(scope) ||
            scope_parse(scope, &parsed) < 0)
            return util_fail(-EINVAL, err, err_len, "store: host %s: bad label '%s'", host_id,
                             labels[i] ? labels[i] : "");
        used +=
            (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? "\n" : "", labels[i]);
    }
    if (sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, (sqlite3_int64)seen_at_wall_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, (sqlite3_int64)seen_at_wall_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, (sqlite3_int64)policy_version) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "recording a host");
    stmt_end(st);
    return rc;
}

int
store_hosts_list(struct store *s, store_host_cb cb, void *ctx, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, STMT_HOSTS_LIST);
    char text[LABELS_TEXT_MAX];
    struct store_host h;
    int rc = 0, step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&h, 0, sizeof(h));
        copy_column(st, 0, h.host_id, sizeof(h.host_id));
        copy_column(st, 1, text, sizeof(text));
        h.first_seen_ms = u64_column(st, 2);
        h.last_seen_ms = u64_column(st, 3);
        h.policy_version = u64_column(st, 4);
        for (char *p = text; *p && h.n_labels < WIRE_LABELS_MAX;) {
            char *nl = strchr(p, '\n');
            h.labels[h.n_labels++] = p;
            if (!nl)
                break;
            *nl = '\0';
            p = nl + 1;
        }
        s->walking = true;
        rc = cb(&h, ctx);
        s->walking = false;
        if (rc != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "reading hosts");
    stmt_end(st);
    return rc < 0 ? rc : 0;
}

/* Delete every row of one host with statement which; *changed receives how many went. */
static int
delete_host_rows(
    struct store *s, enum stmt which, const char *host_id, int *changed, char *err, size_t err_len)
{
    sqlite3_stmt *st = stmt_begin(s, which);
    int rc = 0;

    if (sqlite3_bind_text(st, 1, host_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, err_len, "forgetting a host");
    else
        *changed = sqlite3_changes(s->db);
    stmt_end(st);
    return rc;
}

int
store_host_forget(struct store *s, const char *host_id, char *err, size_t err_len)
{
    int hosts = 0, acks = 0;

    if (!host_id || !wire_host_id_valid(host_id))
        return util_fail(-EINVAL, err, err_len, "store: bad host id");
    int rc = delete_host_rows(s, STMT_HOST_DELETE, host_id, &hosts, err, err_len);
    if (rc == 0)
        rc = delete_host_rows(s, STMT_ACKS_DELETE_HOST, host_id, &acks, err, err_len);
    if (rc == 0 && hosts + acks == 0) {
        snprintf(err, err_len, "store: no host %s", host_id);
        rc = -ENOENT;
    }
    return rc;
}

uint64_t
store_epoch(const struct store *s)
{
    return s->epoch;
}

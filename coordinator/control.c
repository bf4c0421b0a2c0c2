/*
 * control.c - the coordinator's answers to memschedctl (control.h): fleet state and policy as
 * aligned tables or JSON documents, and policy changes.
 *
 * It owns nothing between calls: each request is parsed against its command's row in the
 * command table (options it accepts, whether KEY=VALUE arguments are allowed, its usage line),
 * answered from the fleet (in memory) and the store (SQLite), and rendered into one new string.
 * JSON goes through jansson only (no JSON is ever assembled by hand): numbers are numbers,
 * memory is KiB in fields named *_kib, every command answers one top-level object. Tables speak
 * MiB with one decimal and ages ("3s ago"); wall-clock times are UTC. This file holds the command
 * table and the dispatch; the commands live by subject (control_reply.h says where).
 *
 * Invariants: the fleet is read, never changed; the store is written only by the policy changes
 * (set, unset, delete, rollback), and only after policy_set() per key and policy_validate() of
 * the layered policy of every known host in the scope and of the scope on its own; a request
 * that fails leaves no trace.
 */
#include "control.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_reply.h"
#include "util.h"

static int
option_index(const struct command *cmd, const char *name, size_t len)
{
    for (int i = 0; i < OPTIONS_MAX && cmd->options[i]; i++) {
        if (strlen(cmd->options[i]) == len && strncmp(cmd->options[i], name, len) == 0)
            return i;
    }
    return -1;
}

/* Split the request's arguments into the command's options and KEY=VALUE arguments. */
static enum control_status
parse_args(struct call *c)
{
    const struct wire_control_request *req = c->req;

    for (size_t i = 0; i < req->n_args; i++) {
        const char *arg = req->args[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (!c->cmd->positional)
                return usage_error(c, "unexpected argument", arg);
            c->pos[c->n_pos++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        int k = option_index(c->cmd, arg + 2, len);
        if (k < 0)
            return usage_error(c, "unknown option", arg);
        if (eq)
            c->opt[k] = eq + 1;
        else if (i + 1 < req->n_args)
            c->opt[k] = req->args[++i];
        else
            return usage_error(c, "missing value for", arg);
    }
    return CONTROL_OK;
}
/* ---- dispatch ---- */

static const struct command commands[] = {
    {"status", "status", {NULL}, false, false, cmd_status},
    {"hosts",
     "hosts [--sort host|liveness|seen|vms|available] [--filter SCOPE] [--unit MiB|GiB] "
     "[--limit N] [--after HOST]",
     {"sort", "filter", "unit", "limit", "after"},
     false,
     false,
     cmd_hosts},
    {"hosts-forget", "hosts forget HOST", {"host"}, false, true, cmd_hosts_forget},
    {"vms",
     "vms [--host H] [--sort host|name|actual|unused] [--limit N] [--unit MiB|GiB] "
     "[--after HOST/UUID]",
     {"host", "sort", "limit", "unit", "after"},
     false,
     false,
     cmd_vms},
    {"events", "events [--since SEQ] [--limit N]", {"since", "limit"}, false, false, cmd_events},
    {"why", "why HOST VM", {"host", "vm"}, false, false, cmd_why},
    {"history", "history HOST [VM]", {"host", "vm"}, false, false, cmd_history},
    {"policy-show",
     "policy show [--scope S | --host H] [--limit N] [--after HOST]",
     {"scope", "host", "limit", "after"},
     false,
     false,
     cmd_policy_show},
    {"policy-set",
     "policy set --scope S --reason TEXT KEY=VALUE...",
     {"scope", "reason"},
     true,
     true,
     cmd_policy_set},
    {"policy-unset",
     "policy unset --scope S --reason TEXT KEY...",
     {"scope", "reason"},
     true,
     true,
     cmd_policy_unset},
    {"policy-delete",
     "policy delete --scope S --reason TEXT",
     {"scope", "reason"},
     false,
     true,
     cmd_policy_delete},
    {"policy-rollback",
     "policy rollback --scope S --to vN --reason TEXT",
     {"scope", "to", "reason"},
     false,
     true,
     cmd_policy_rollback},
    {"policy-wait", "policy wait --scope S", {"scope"}, false, false, cmd_policy_wait},
    {"policy-history",
     "policy history [--scope S] [--limit N]",
     {"scope", "limit"},
     false,
     false,
     cmd_policy_history},
};

static const struct command *
command_find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* A reply the transport cannot carry becomes an error that says how to narrow it. */
static enum control_status
check_size(struct call *c, enum control_status st)
{
    size_t len = strlen(*c->body);

    if (len <= WIRE_BODY_MAX)
        return st;
    return fail(c, CONTROL_USAGE,
                "%s: the answer (%zu bytes) is larger than a reply can be (%d bytes): narrow "
                "it (--limit, --host, --scope)",
                c->cmd->name, len, WIRE_BODY_MAX);
}

enum control_status
control_handle(const struct control_context *cc,
               const struct wire_control_request *req,
               char **body)
{
    struct call c = {.cc = cc, .req = req, .body = body};
    enum control_status st;

    *body = NULL;
    c.cmd = command_find(req->command);
    if (!c.cmd) {
        *body =
            util_xstrdup("unknown command: the coordinator answers status, hosts, hosts-forget, "
                         "vms, events, why, history, policy-show, policy-set, policy-unset, "
                         "policy-delete, "
                         "policy-rollback, policy-wait and policy-history");
        return CONTROL_USAGE;
    }
    st = parse_args(&c);
    if (st == CONTROL_OK && c.cmd->writes && cc->read_only)
        st = fail(&c, CONTROL_DENIED, "%s: this operator key is read-only (admin_read_dir)",
                  c.cmd->name);
    if (st == CONTROL_OK)
        st = c.cmd->run(&c);
    if (!*body)
        *body = util_xstrdup("");
    return check_size(&c, st);
}

/*
 * eval_main.c - memsched-eval: run sim scenarios under memsched and the baselines on the fake
 * clock and print what each did to the guests and the host (a table, or --json).
 *
 *   memsched-eval [--planner SPEC]... [--set KEY=VALUE]... [--in-force FILE] [--duration S]
 *                 [--json | --markdown] [--record FILE] SCENARIO...
 *   memsched-eval --policy FILE [--in-force FILE] [--set KEY=VALUE]... SCENARIO...   (what-if)
 *
 * SPEC is a planner (memsched, seed, proxmox, mom), optionally with a policy file layered on
 * the common policy and changes of its own: "memsched@proposed.conf:predictive=false". The
 * common policy is the defaults, then --in-force FILE, then --set (the thresholds the figures
 * are measured against included). Without --planner, the standard set. --policy FILE is the
 * operator's what-if: memsched under the policy in force and under FILE layered on it, and per
 * scenario which figures the proposal makes worse or better.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "eval.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#define SPECS_MAX 16
#define SETS_MAX  32

static const char *const standard_specs[] = {
    "memsched", "memsched:predictive=false", "memsched:demand_signal=unused", "seed", "proxmox",
    "mom",
};

struct options {
    const char *specs[SPECS_MAX];
    size_t n_specs;
    const char *sets[SETS_MAX];
    size_t n_sets;
    uint64_t duration_ms;
    bool json;
    bool markdown;
    const char *record;
    const char *in_force; /* a policy file under every run */
    const char *proposed; /* --policy: the what-if's policy file */
    char proposed_spec[512];
};

/* The figures of the markdown table: lower is better in every one. */
struct figure {
    const char *header;
    int decimals;
    double (*get)(const struct eval_result *r);
};

static double
get_pressure(const struct eval_result *r)
{
    return r->pressure_vm_s;
}
static double
get_starved(const struct eval_result *r)
{
    return r->starvation_vm_s;
}
static double
get_refused(const struct eval_result *r)
{
    return r->refused_mib;
}
static double
get_floor_s(const struct eval_result *r)
{
    return r->floor_below_s;
}
static double
get_floor_worst(const struct eval_result *r)
{
    return r->floor_worst_mib;
}
static double
get_relief(const struct eval_result *r)
{
    return r->relief_worst_s;
}
static double
get_give_back(const struct eval_result *r)
{
    return r->give_back_worst_s;
}
static double
get_ops(const struct eval_result *r)
{
    return (double)r->balloon_ops;
}
static double
get_moved(const struct eval_result *r)
{
    return r->moved_mib;
}
static double
get_idle(const struct eval_result *r)
{
    return r->idle_moved_mib;
}

static const struct figure figures[] = {
    {"pressure VM-s", 1, get_pressure},
    {"starved VM-s", 1, get_starved},
    {"refused MiB", 0, get_refused},
    {"below floor s", 1, get_floor_s},
    {"floor worst MiB", 0, get_floor_worst},
    {"worst relief s", 1, get_relief},
    {"worst give-back s", 1, get_give_back},
    {"balloon ops", 0, get_ops},
    {"moved MiB", 0, get_moved},
    {"idle moved MiB", 0, get_idle},
};

/* One scenario's runs as a markdown table, the best value of each figure in bold. */
static void
print_markdown(const char *scenario,
               const char *const *specs,
               const struct eval_result *rs,
               size_t n)
{
    printf("\n### %s\n\n| planner |", scenario);
    for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++)
        printf(" %s |", figures[f].header);
    printf("\n|---|");
    for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++)
        printf("---:|");
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        printf("| %s |", specs[i]);
        for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
            double best = figures[f].get(&rs[0]), v = figures[f].get(&rs[i]);
            char cell[32];
            for (size_t j = 1; j < n; j++)
                best = figures[f].get(&rs[j]) < best ? figures[f].get(&rs[j]) : best;
            snprintf(cell, sizeof(cell), "%.*f", figures[f].decimals, v);
            printf(v <= best ? " **%s** |" : " %s |", cell);
        }
        putchar('\n');
    }
}

/* Whether b differs from a by more than the noise of the figure's printed precision: 5 %, and at
 * least one unit of its last printed digit. */
static bool
differs(const struct figure *f, double a, double b)
{
    double unit = f->decimals ? 0.1 : 1.0;
    double tolerance = 0.05 * (a < 0 ? -a : a);
    double d = b - a;

    return (d < 0 ? -d : d) > (tolerance > unit ? tolerance : unit);
}

/* The what-if's answer for one scenario: the figures the proposal makes worse, then better (all
 * are lower-is-better), as text and as JSON. */
static json_t *
verdict(const char *scenario,
        const struct eval_result *in_force,
        const struct eval_result *proposed)
{
    json_t *worse = json_array(), *better = json_array();

    for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
        double a = figures[f].get(in_force), b = figures[f].get(proposed);
        if (!differs(&figures[f], a, b))
            continue;
        double scale = figures[f].decimals ? 10.0 : 1.0; /* as printed */
        json_array_append_new(b > a ? worse : better,
                              json_pack("{s:s,s:f,s:f}", "figure", figures[f].header, "in_force",
                                        round(a * scale) / scale, "proposed",
                                        round(b * scale) / scale));
    }
    return json_pack("{s:s,s:o,s:o}", "scenario", scenario, "worse", worse, "better", better);
}

static void
print_verdict_side(const char *label, const json_t *list)
{
    size_t i;
    json_t *e;

    printf("  %s:", label);
    if (json_array_size(list) == 0)
        printf(" nothing");
    json_array_foreach(list, i, e)
        printf("%s %s %g -> %g", i ? "," : "", json_string_value(json_object_get(e, "figure")),
               json_real_value(json_object_get(e, "in_force")),
               json_real_value(json_object_get(e, "proposed")));
    putchar('\n');
}

static void
print_verdict(const json_t *v)
{
    printf("what-if %s, the proposed policy against the one in force:\n",
           json_string_value(json_object_get(v, "scenario")));
    print_verdict_side("worse", json_object_get(v, "worse"));
    print_verdict_side("better", json_object_get(v, "better"));
}

static void
usage(FILE *f)
{
    fputs("usage: memsched-eval [--planner SPEC]... [--set KEY=VALUE]... [--in-force FILE]\n"
          "                     [--duration S] [--json | --markdown] [--record FILE] SCENARIO...\n"
          "       memsched-eval --policy FILE [--in-force FILE] [--set KEY=VALUE]... SCENARIO...\n"
          "SPEC: memsched, seed, proxmox or mom; @FILE layers a policy file (key = value lines,\n"
          "as memschedctl policy show prints them) on the common policy, and changes of its own\n"
          "follow a colon (memsched@new.conf:predictive=false). Default: memsched, memsched\n"
          "without prediction, memsched on MemFree, seed, proxmox, mom.\n"
          "--policy FILE: what would FILE do? memsched under the policy in force (defaults,\n"
          "--in-force FILE, --set) and under FILE on top of it, and which figures get worse.\n",
          f);
}

/* key=value into the policy; err names what is wrong. */
static int
apply_set(struct policy *p, const char *kv, char *err, size_t err_len)
{
    char key[64];
    const char *eq = strchr(kv, '=');

    if (!eq || (size_t)(eq - kv) >= sizeof(key))
        return util_fail(-EINVAL, err, err_len, "'%s': want KEY=VALUE", kv);
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    return policy_set(p, key, eq + 1, err, err_len);
}

/* The keys a policy file sets, on top of what p holds: a file need not name every key. */
static int
load_policy_file(const char *path, struct policy *p, char *err, size_t err_len)
{
    struct config_binding binding = {.table = policy_table(), .obj = p};

    return config_parse_file(path, config_bound_set, &binding, err, err_len);
}

/* A planner spec into its planner and policy (the common policy plus its own changes). */
static int
parse_spec(const char *spec,
           const struct policy *common,
           struct eval_options *o,
           char *err,
           size_t err_len)
{
    char name[32], file[256], changes[512];
    const char *colon = strchr(spec, ':');
    size_t head = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *at = memchr(spec, '@', head);
    int rc;

    snprintf(name, sizeof(name), "%.*s", (int)(at ? at - spec : (ptrdiff_t)head), spec);
    if (eval_planner_parse(name, &o->planner) < 0)
        return util_fail(-EINVAL, err, err_len,
                         "unknown planner '%s' (memsched, seed, proxmox, mom)", name);
    o->policy = *common;
    if (at) {
        snprintf(file, sizeof(file), "%.*s", (int)(spec + head - at - 1), at + 1);
        rc = load_policy_file(file, &o->policy, err, err_len);
        if (rc < 0)
            return rc;
    }
    snprintf(changes, sizeof(changes), "%s", colon ? colon + 1 : "");
    for (char *save = NULL, *kv = strtok_r(changes, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        rc = apply_set(&o->policy, kv, err, err_len);
        if (rc < 0)
            return rc;
    }
    return policy_validate(&o->policy, err, err_len);
}

static int
parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"planner", required_argument, NULL, 'p'},  {"set", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},
        {"record", required_argument, NULL, 'r'},   {"help", no_argument, NULL, 'h'},
        {"markdown", no_argument, NULL, 'm'},       {"policy", required_argument, NULL, 'P'},
        {"in-force", required_argument, NULL, 'I'}, {NULL, 0, NULL, 0},
    };
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'p' && o->n_specs < SPECS_MAX) {
            o->specs[o->n_specs++] = optarg;
        } else if (c == 's' && o->n_sets < SETS_MAX) {
            o->sets[o->n_sets++] = optarg;
        } else if (c == 'd') {
            unsigned long s = strtoul(optarg, &end, 10);
            if (*end || s == 0 || s > 86400) {
                fprintf(stderr, "memsched-eval: --duration wants seconds 1-86400\n");
                return 2;
            }
            o->duration_ms = (uint64_t)s * 1000;
        } else if (c == 'j') {
            o->json = true;
        } else if (c == 'm') {
            o->markdown = true;
        } else if (c == 'r') {
            o->record = optarg;
        } else if (c == 'P') {
            o->proposed = optarg;
        } else if (c == 'I') {
            o->in_force = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (o->proposed && o->n_specs) {
        fprintf(stderr, "memsched-eval: --policy compares memsched under two policies: no "
                        "--planner with it\n");
        return 2;
    }
    return -1;
}

static const char *
basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void
print_header(void)
{
    printf("%-18s %-30s %9s %9s %8s %14s %13s %6s %9s %9s\n", "SCENARIO", "PLANNER", "PRESSURE",
           "STARVED", "REFUSED", "FLOOR n/s/MiB", "RELIEF med/max", "OPS", "MOVED", "IDLE MOVED");
    printf("%-18s %-30s %9s %9s %8s %14s %13s %6s %9s %9s\n", "", "", "VM-s", "VM-s", "MiB", "",
           "s", "", "MiB", "MiB");
}

static void
print_row(const char *scenario, const char *spec, const struct eval_result *r)
{
    char floor[32], relief[32];

    snprintf(floor, sizeof(floor), "%" PRIu64 "/%.1f/%.0f", r->floor_breaches, r->floor_below_s,
             r->floor_worst_mib);
    snprintf(relief, sizeof(relief), "%.1f/%.1f", r->relief_median_s, r->relief_worst_s);
    printf("%-18s %-30s %9.1f %9.1f %8.0f %14s %13s %6" PRIu64 " %9.0f %9.0f\n", scenario, spec,
           r->pressure_vm_s, r->starvation_vm_s, r->refused_mib, floor, relief, r->balloon_ops,
           r->moved_mib, r->idle_moved_mib);
}

static json_t *
row_json(const char *scenario, const char *spec, const struct eval_result *r)
{
    json_t *o = json_object();

    json_object_set_new(o, "scenario", json_string(scenario));
    json_object_set_new(o, "planner", json_string(spec));
    json_object_set_new(o, "duration_ms", json_integer((json_int_t)r->duration_ms));
    json_object_set_new(o, "vms", json_integer((json_int_t)r->vms));
    json_object_set_new(o, "pressure_vm_s", json_real(r->pressure_vm_s));
    json_object_set_new(o, "starvation_vm_s", json_real(r->starvation_vm_s));
    json_object_set_new(o, "refused_mib", json_real(r->refused_mib));
    json_object_set_new(o, "floor_breaches", json_integer((json_int_t)r->floor_breaches));
    json_object_set_new(o, "floor_below_s", json_real(r->floor_below_s));
    json_object_set_new(o, "floor_worst_mib", json_real(r->floor_worst_mib));
    json_object_set_new(o, "episodes", json_integer((json_int_t)r->episodes));
    json_object_set_new(o, "relief_median_s", json_real(r->relief_median_s));
    json_object_set_new(o, "relief_worst_s", json_real(r->relief_worst_s));
    json_object_set_new(o, "give_backs", json_integer((json_int_t)r->give_backs));
    json_object_set_new(o, "never_given_back", json_integer((json_int_t)r->never_given_back));
    json_object_set_new(o, "give_back_median_s", json_real(r->give_back_median_s));
    json_object_set_new(o, "give_back_worst_s", json_real(r->give_back_worst_s));
    json_object_set_new(o, "balloon_ops", json_integer((json_int_t)r->balloon_ops));
    json_object_set_new(o, "moved_mib", json_real(r->moved_mib));
    json_object_set_new(o, "idle_moved_mib", json_real(r->idle_moved_mib));
    json_object_set_new(o, "idle_ops", json_integer((json_int_t)r->idle_ops));
    return o;
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct policy common;
    char err[EVAL_ERR_MAX];
    json_t *runs = json_array();
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;
    log_set_level(LOG_LEVEL_ERR); /* the agent's round logs every decision: not here */
    policy_init_defaults(&common);
    if (o.in_force && load_policy_file(o.in_force, &common, err, sizeof(err)) < 0) {
        fprintf(stderr, "memsched-eval: --in-force %s\n", err);
        return 2;
    }
    for (size_t i = 0; i < o.n_sets; i++) {
        if (apply_set(&common, o.sets[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-eval: --set %s\n", err);
            return 2;
        }
    }
    if (o.proposed) {
        snprintf(o.proposed_spec, sizeof(o.proposed_spec), "memsched@%s", o.proposed);
        o.specs[o.n_specs++] = "memsched";
        o.specs[o.n_specs++] = o.proposed_spec;
    } else if (o.n_specs == 0) {
        for (size_t i = 0; i < sizeof(standard_specs) / sizeof(standard_specs[0]); i++)
            o.specs[o.n_specs++] = standard_specs[i];
    }
    /* Every spec's policy is checked before anything runs: a bad proposal is refused at once. */
    struct eval_options planned[SPECS_MAX] = {0};
    for (size_t s = 0; s < o.n_specs; s++) {
        if (parse_spec(o.specs[s], &common, &planned[s], err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-eval: %s: %s\n", o.specs[s], err);
            json_decref(runs);
            return 2;
        }
    }
    json_t *what_if = json_array();
    if (!o.json && !o.markdown)
        print_header();
    for (int a = optind; a < argc; a++) {
        struct eval_result results[SPECS_MAX];
        for (size_t s = 0; s < o.n_specs; s++) {
            struct eval_options eo = planned[s];
            struct eval_result *r = &results[s];
            eo.scenario = argv[a];
            eo.duration_ms = o.duration_ms;
            eo.record = o.record;
            if (eval_run(&eo, r, err, sizeof(err)) < 0) {
                fprintf(stderr, "memsched-eval: %s: %s: %s\n", argv[a], o.specs[s], err);
                json_decref(runs);
                json_decref(what_if);
                return 1;
            }
            if (o.json)
                json_array_append_new(runs, row_json(basename_of(argv[a]), o.specs[s], r));
            else if (!o.markdown)
                print_row(basename_of(argv[a]), o.specs[s], r);
        }
        if (o.markdown)
            print_markdown(basename_of(argv[a]), o.specs, results, o.n_specs);
        if (o.proposed) {
            json_t *v = verdict(basename_of(argv[a]), &results[0], &results[1]);
            if (!o.json)
                print_verdict(v);
            json_array_append_new(what_if, v);
        }
    }
    if (o.json) {
        json_t *root = json_pack("{s:o}", "runs", runs);
        if (o.proposed)
            json_object_set(root, "what_if", what_if);
        json_dumpf(root, stdout, JSON_INDENT(1));
        putchar('\n');
        json_decref(root);
    } else {
        json_decref(runs);
    }
    json_decref(what_if);
    return 0;
}

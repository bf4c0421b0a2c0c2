/*
 * policy.js - the policy in force (policy-show): the keys each scope sets, newest version per
 * scope, and per host the version it holds, the one it should, and its last ack (applied, or
 * refused and why). Refreshes every 5 s, so a push can be watched as the acks come in.
 */
"use strict";

(() => {
    const m = memsched;

    function keys(policy) {
        return Object.entries(policy).map(([k, v]) => k + "=" + v).join("  ");
    }

    function policiesTable(policies) {
        if (!policies.length)
            return m.el("p", { class: "muted" }, "no policy stored: every agent keeps its own config");
        return m.table([
            { title: "scope", cell: (p) => p.scope },
            { title: "version", cell: (p) => "v" + p.version },
            { title: "sets", cell: (p) => keys(p.policy) },
            { title: "by", cell: (p) => p.author },
            { title: "why", cell: (p) => p.reason },
            { title: "when", cell: (p) => new Date(p.created_at_ms).toLocaleString() },
        ], policies, { id: "policies-table" });
    }

    function ack(h) {
        const a = h.last_ack;
        if (!a) return "–";
        return "v" + a.version + " " + (a.applied ? "applied" : "refused: " + a.reason);
    }

    function hostsTable(hosts) {
        if (!hosts.length) return m.el("p", { class: "muted" }, "no hosts known");
        return m.table([
            { title: "host", cell: (h) => m.link(m.hostHref(h.host_id), h.host_id) },
            { title: "liveness", cell: (h) => m.liveness(h.liveness) },
            { title: "holds", cell: (h) => "v" + h.holds_version },
            { title: "should hold", cell: (h) => h.should_hold_version === null ? "–"
                : "v" + h.should_hold_version + " (" + h.should_hold_scope + ")" },
            { title: "state", cell: (h) => h.state },
            { title: "last ack", cell: ack },
        ], hosts, { id: "policy-hosts-table" });
    }

    async function load() {
        const r = await m.api("policy");
        document.getElementById("policies").replaceChildren(policiesTable(r.policies));
        document.getElementById("hosts").replaceChildren(hostsTable(r.hosts));
        document.getElementById("error").replaceChildren();
    }

    document.addEventListener("DOMContentLoaded", () =>
        m.refresh(load, document.getElementById("error"), 5000));
})();

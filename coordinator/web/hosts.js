/*
 * hosts.js - the host table, a page at a time in host order (the hosts command's --limit and
 * --after), so a fleet of thousands loads as fast as a fleet of fifty. The page's position is
 * in the URL (?after=HOST), so a reload or a shared link shows the same hosts.
 */
"use strict";

(() => {
    const m = memsched;
    const PAGE = 50;
    let afters = []; /* the after= of each earlier page, to go back */
    let after = m.param("after") || "";
    let next = null;

    function ack(h) {
        const a = h.last_ack;
        if (!a) return "–";
        return "v" + a.version + " " + (a.applied ? "applied" : "refused" + (a.reason ? ": " + a.reason : ""));
    }

    function hostsTable(hosts) {
        return m.table([
            { title: "host", cell: (h) => m.link(m.hostHref(h.host_id), h.host_id) },
            { title: "liveness", cell: (h) => m.liveness(h.liveness) },
            { title: "last seen", cell: (h) => m.age(h.last_seen_age_ms) },
            { title: "VMs", num: true, cell: (h) => h.vm_count },
            { title: "host MiB", num: true, cell: (h) => m.mib(h.host_total_kib) },
            { title: "available MiB", num: true, cell: (h) => m.mib(h.host_available_kib) },
            { title: "VMs' balloons MiB", num: true, cell: (h) => m.mib(h.vm_actual_kib) },
            { title: "policy", cell: (h) => "v" + h.policy_version },
            { title: "ack", cell: ack },
            { title: "labels", cell: (h) => h.labels.join(", ") },
        ], hosts, { id: "hosts-table" });
    }

    async function load() {
        const r = await m.api("hosts", { limit: PAGE, after });
        next = r.next_after;
        document.getElementById("hosts").replaceChildren(hostsTable(r.hosts));
        const first = afters.length * PAGE + 1;
        document.getElementById("range").textContent = r.hosts.length
            ? "hosts " + first + "–" + (first + r.hosts.length - 1) + " of " + r.total
            : "no hosts";
        document.getElementById("next").disabled = !next;
        document.getElementById("prev").disabled = !afters.length;
        document.getElementById("first").disabled = !after;
        document.getElementById("error").replaceChildren();
    }

    function go(newAfter) {
        after = newAfter || "";
        const url = new URL(location.href);
        if (after) url.searchParams.set("after", after);
        else url.searchParams.delete("after");
        history.replaceState(null, "", url);
        load().catch((err) => m.showError(document.getElementById("error"), err));
    }

    document.addEventListener("DOMContentLoaded", () => {
        document.getElementById("next").addEventListener("click", () => {
            afters.push(after);
            go(next);
        });
        document.getElementById("prev").addEventListener("click", () => go(afters.pop()));
        document.getElementById("first").addEventListener("click", () => {
            afters = [];
            go("");
        });
        m.refresh(load, document.getElementById("error"), 5000);
    });
})();

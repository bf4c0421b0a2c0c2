/*
 * host.js - one host: its memory over time (history: total, available, what the balloons
 * hold) and each VM's (balloon, used, unused) with memsched's decisions marked, then its VMs
 * with links to their "why". Refreshes every 10 s.
 */
"use strict";

(() => {
    const m = memsched;
    const COLORS = { balloon: "#2360a5", used: "#c47f00", unused: "#2e8540",
                     total: "#5d6778", available: "#2e8540", balloons: "#2360a5" };

    function used(actual, unused) {
        return actual.map((a, i) => (a === null || unused[i] === null || unused[i] === undefined
            ? null : a - unused[i]));
    }

    function hostChart(where, h, decisions) {
        where.replaceChildren();
        memschedChart.draw(where, "host", h.t, [
            { label: "total", color: COLORS.total, values: h.total_kib },
            { label: "available", color: COLORS.available, values: h.available_kib },
            { label: "balloons", color: COLORS.balloons, values: h.balloons_kib },
        ], decisions, 1100, true);
    }

    /* Charts drawn before the page shows its data; the rest follow a batch per frame, so a host
     * with 50 VMs shows its first screen at once instead of after 50 uPlot charts. */
    const CHARTS_AT_ONCE = 6;
    let drawing = 0; /* the newest refresh's number: an older one's batches stop */

    function vmChart(where, host, vm, decisions) {
        const mine = decisions.filter((d) => d.uuid === vm.uuid);
        memschedChart.draw(where, vm.domain, vm.t, [
            { label: "balloon", color: COLORS.balloon, values: vm.actual_kib },
            { label: "used", color: COLORS.used, values: used(vm.actual_kib, vm.unused_kib) },
            { label: "unused", color: COLORS.unused, values: vm.unused_kib },
        ], mine);
        const box = where.lastElementChild;
        box.id = "chart-" + vm.uuid;
        box.querySelector("h3").replaceChildren(m.link(m.vmHref(host, vm.uuid), vm.domain));
    }

    /* where.dataset.drawn is "all" once every VM's chart is there (the browser test waits). */
    function vmCharts(where, host, vms, decisions) {
        const mine = ++drawing;
        where.replaceChildren();
        where.dataset.drawn = "some";
        if (!vms.length) {
            where.append(m.el("p", { class: "muted" }, "no VM history yet"));
            where.dataset.drawn = "all";
            return;
        }
        let next = 0;
        function batch() {
            if (mine !== drawing) return;
            for (const end = Math.min(next + CHARTS_AT_ONCE, vms.length); next < end; next++)
                vmChart(where, host, vms[next], decisions);
            if (next < vms.length) requestAnimationFrame(batch);
            else where.dataset.drawn = "all";
        }
        batch();
    }

    function cards(h) {
        const last = h.t.length - 1;
        if (last < 0) return [];
        return [
            m.card("Host memory", m.mib(h.total_kib[last]) + " MiB", ""),
            m.card("Available", m.mib(h.available_kib[last]) + " MiB", ""),
            m.card("Balloons", m.mib(h.balloons_kib[last]) + " MiB", "what the VMs hold"),
        ];
    }

    function vmsTable(host, vms) {
        return m.table([
            { title: "VM", cell: (v) => m.link(m.vmHref(host, v.uuid), v.name) },
            { title: "state", cell: (v) => v.state + (v.stuck ? " (stuck)" : "") },
            { title: "balloon MiB", num: true, cell: (v) => m.mib(v.actual_kib) },
            { title: "target MiB", num: true, cell: (v) => m.mib(v.target_kib) },
            { title: "unused MiB", num: true, cell: (v) => m.mib(v.unused_kib) },
            { title: "usable MiB", num: true, cell: (v) => m.mib(v.usable_kib) },
            { title: "max MiB", num: true, cell: (v) => m.mib(v.max_kib) },
            { title: "last decision", cell: (v) => v.last_decision || "–" },
        ], vms, { id: "vms-table" });
    }

    async function load() {
        const host = m.param("host");
        if (!host) throw new Error("this page wants ?host=HOST");
        document.getElementById("title").textContent = host;
        const [hist, vms] = await Promise.all([m.api("history", { host }), m.api("vms", { host })]);
        document.getElementById("cards").replaceChildren(...cards(hist.host));
        hostChart(document.getElementById("host-chart"), hist.host, hist.decisions);
        vmCharts(document.getElementById("vm-charts"), host, hist.vms, hist.decisions);
        document.getElementById("vms").replaceChildren(vmsTable(host, vms.vms));
        document.getElementById("error").replaceChildren();
    }

    document.addEventListener("DOMContentLoaded", () =>
        m.refresh(load, document.getElementById("error"), 10000));
})();

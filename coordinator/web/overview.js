/*
 * overview.js - the fleet at a glance: memory granted to VMs, free on hosts, reclaimed by
 * balloons; hosts by liveness; the VMs under pressure now (least unused first); recent events.
 * Refreshes every 5 s. Three API calls, none of which grows with the fleet's size in what it
 * returns (the VMs and events are limited).
 */
"use strict";

(() => {
    const m = memsched;
    const PRESSURE_ROWS = 20;
    const EVENT_ROWS = 15;

    function cards(st) {
        const mem = st.memory;
        const h = st.hosts;
        return [
            m.card("Hosts", h.total,
                [h.fresh + " fresh · ", h.stale + " stale · ", h.down + " down"].join(""),
                { id: "card-hosts" }),
            m.card("Granted to VMs", m.gib(mem.vm_actual_kib) + " GiB", "balloon actual, all VMs"),
            m.card("Free on hosts", m.gib(mem.host_available_kib) + " GiB",
                "of " + m.gib(mem.host_total_kib) + " GiB"),
            m.card("Reclaimed", m.gib(mem.vm_max_kib - mem.vm_actual_kib) + " GiB",
                "VMs' max − balloon actual"),
            m.card("Overcommit", st.overcommit.toFixed(2), "VMs' max / host memory"),
            m.card("VMs", st.vms.total, st.vms.under_pressure + " under pressure",
                { id: "card-vms" }),
            m.card("Decisions", st.decisions_last_minute, "in the last minute"),
            m.card("Fleet policy", st.fleet_policy ? "v" + st.fleet_policy.version : "defaults",
                st.fleet_policy ? st.fleet_policy.reason || "" : "no fleet policy set"),
        ];
    }

    function pressureTable(vms, threshold_kib) {
        const under = vms.filter((v) => v.unused_kib !== null && v.unused_kib < threshold_kib);
        if (!under.length)
            return m.el("p", { class: "muted" }, "none: every VM reports at least " +
                m.mib(threshold_kib) + " MiB unused");
        return m.table([
            { title: "host", cell: (v) => m.link(m.hostHref(v.host_id), v.host_id) },
            { title: "VM", cell: (v) => m.link(m.vmHref(v.host_id, v.uuid), v.name) },
            { title: "unused MiB", num: true, cell: (v) => m.el("span", { class: "pressure" }, m.mib(v.unused_kib)) },
            { title: "balloon MiB", num: true, cell: (v) => m.mib(v.actual_kib) },
            { title: "max MiB", num: true, cell: (v) => m.mib(v.max_kib) },
            { title: "last decision", cell: (v) => v.last_decision || "–" },
        ], under, { id: "pressure-table" });
    }

    function eventsTable(events) {
        if (!events.length) return m.el("p", { class: "muted" }, "no events yet");
        return m.table([
            { title: "seq", num: true, cell: (e) => e.seq },
            { title: "age", cell: (e) => m.age(e.age_ms) },
            { title: "host", cell: (e) => e.host_id ? m.link(m.hostHref(e.host_id), e.host_id) : "–" },
            { title: "what", cell: (e) => e.kind },
            { title: "detail", cell: (e) => e.detail || "" },
        ], events.slice().reverse(), { id: "events-table" });
    }

    async function load() {
        const st = (await m.api("status")).status;
        document.getElementById("cards").replaceChildren(...cards(st));
        const [vms, ev] = await Promise.all([
            m.api("vms", { sort: "unused", limit: PRESSURE_ROWS }),
            m.api("events", { limit: EVENT_ROWS }),
        ]);
        document.getElementById("pressure").replaceChildren(
            pressureTable(vms.vms, st.vms.pressure_unused_kib));
        document.getElementById("events").replaceChildren(eventsTable(ev.events));
        document.getElementById("error").replaceChildren();
    }

    document.addEventListener("DOMContentLoaded", () =>
        m.refresh(load, document.getElementById("error"), 5000));
})();

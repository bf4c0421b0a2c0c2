/*
 * chart.js - memory over time with decisions marked, on uPlot (served from this server,
 * fetched at build time from npm, pinned in package-lock.json).
 *
 * A chart takes samples (t in epoch ms, oldest first, and one value array per series in KiB,
 * null where unknown) and decisions (t, new_target_kib, reason). Decisions rarely fall on a
 * sample's time, so the x axis is the union of both: each series is null where it has no
 * sample (lines span the gaps) and the decision series has a point only at its decisions. A
 * draw hook adds a vertical mark per decision, green for growth and red for a shrink.
 */
"use strict";

const memschedChart = (() => {
    const KIB_PER_MIB = 1024;
    const GROW = "#2e8540";
    const SHRINK = "#c62828";

    function isGrow(d) {
        return d.new_target_kib >= d.old_target_kib;
    }

    /* xs: sorted unique seconds from sample and decision times; index of each. */
    function axis(sampleT, decisions) {
        const set = new Set(sampleT);
        for (const d of decisions) set.add(d.t);
        const ms = Array.from(set).sort((a, b) => a - b);
        const index = new Map(ms.map((t, i) => [t, i]));
        return { xs: ms.map((t) => t / 1000), index };
    }

    function align(n, index, ts, values) {
        const out = new Array(n).fill(null);
        ts.forEach((t, i) => {
            const v = values[i];
            out[index.get(t)] = v === null || v === undefined ? null : v / KIB_PER_MIB;
        });
        return out;
    }

    function markDecisions(decisions) {
        return (u) => {
            const ctx = u.ctx;
            const { top, height } = u.bbox;
            ctx.save();
            ctx.lineWidth = 1;
            for (const d of decisions) {
                const x = Math.round(u.valToPos(d.t / 1000, "x", true));
                ctx.strokeStyle = isGrow(d) ? GROW : SHRINK;
                ctx.globalAlpha = 0.35;
                ctx.beginPath();
                ctx.moveTo(x, top);
                ctx.lineTo(x, top + height);
                ctx.stroke();
            }
            ctx.restore();
        };
    }

    /*
     * where: the element to draw in; title; t: sample times (ms); series: [{label, color,
     * values (KiB)}]; decisions: [{t, old_target_kib, new_target_kib, reason}]; width in
     * pixels; marksOnly: decisions as vertical marks without their target's dot.
     * Returns the number of data points drawn (non-null sample values and decisions), also set
     * on the chart's element as data-points (and data-decisions) for tests and curious readers.
     */
    function draw(where, title, t, series, decisions, width, marksOnly) {
        const { xs, index } = axis(t, decisions);
        const data = [xs];
        let points = 0;
        for (const s of series) {
            const col = align(xs.length, index, t, s.values);
            points += col.filter((v) => v !== null).length;
            data.push(col);
        }
        /* A VM's target means nothing on a host's scale: there, only the vertical marks. */
        const marks = align(xs.length, index, decisions.map((d) => d.t),
            decisions.map((d) => (marksOnly ? null : d.new_target_kib)));
        data.push(marks);
        const box = document.createElement("div");
        box.className = "chart";
        box.dataset.points = String(points);
        box.dataset.decisions = String(decisions.length);
        const h = document.createElement("h3");
        h.textContent = title;
        box.append(h);
        where.append(box);
        const opts = {
            width: width || 560,
            height: 220,
            scales: { x: { time: true } },
            axes: [{}, { label: "MiB", size: 60 }],
            series: [
                {},
                ...series.map((s) => ({
                    label: s.label,
                    stroke: s.color,
                    width: 1.5,
                    spanGaps: true,
                    points: { show: false },
                    value: (u, v) => (v === null ? "–" : Math.round(v) + " MiB"),
                })),
                {
                    label: "decision (target)",
                    stroke: "#444",
                    paths: () => null,
                    points: { show: true, size: 7, fill: "#444" },
                    value: (u, v) => (v === null ? "–" : Math.round(v) + " MiB"),
                },
            ],
            hooks: { draw: [markDecisions(decisions)] },
        };
        new uPlot(opts, data, box);
        return points + decisions.length;
    }

    return { draw };
})();

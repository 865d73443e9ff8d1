// The stylesheet and script inlined into `gateway-action report`'s HTML. Both are constants: the
// report's Content-Security-Policy allows exactly these two by hash (and, in a report with a
// terminal recording, the player's script and stylesheet: report-player.ts), so nothing injected
// through the log (which is attacker-controlled) could run even if escaping failed.

export const REPORT_CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 24px 0 2px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 0; }
a { color: #0969da; }
code, pre, .mono { font-family: var(--mono); font-size: 12.5px; }
.sub { color: var(--muted); margin: 0; }
.banner { border-bottom: 4px solid; padding: 18px 24px; }
.banner-inner { max-width: 1132px; margin: 0 auto; display: flex; gap: 18px; align-items: flex-start; }
.banner-mark { flex: none; width: 44px; height: 44px; border-radius: 50%; color: #fff; font: 700 26px/44px system-ui, sans-serif; text-align: center; }
.banner-title { font-size: 24px; font-weight: 800; letter-spacing: .04em; }
.banner-detail { font-size: 15px; font-weight: 600; overflow-wrap: anywhere; }
.banner-note { margin-top: 4px; color: #333; }
.banner.good { background: var(--ok-bg); border-color: var(--ok); } .banner.good .banner-mark { background: var(--ok); } .banner.good .banner-title { color: var(--ok); }
.banner.bad { background: var(--bad-bg); border-color: var(--bad); } .banner.bad .banner-mark { background: var(--bad); } .banner.bad .banner-title { color: var(--bad); }
.banner.warn { background: var(--warn-bg); border-color: #d4a72c; } .banner.warn .banner-mark { background: #bf8700; } .banner.warn .banner-title { color: var(--warn); }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; margin-top: 18px; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; background: #fff; }
.panel h2 { margin: 0 0 8px; border: 0; padding: 0; font-size: 15px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.status-line { font-weight: 600; margin: 0 0 8px; }
.status-line.good { color: var(--ok); } .status-line.bad { color: var(--bad); } .status-line.warn { color: var(--warn); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; background: var(--bg); }
.card .n { font-size: 26px; font-weight: 700; line-height: 1.2; }
.card .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .x { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.card.hot-bad { background: var(--bad-bg); border-color: #ff8182; } .card.hot-bad .n { color: var(--bad); }
.card.hot-warn { background: var(--warn-bg); border-color: #d4a72c; } .card.hot-warn .n { color: var(--warn); }
.note { color: var(--muted); font-size: 12.5px; margin: 6px 0 0; }
.attention { list-style: none; margin: 0; padding: 0; display: grid; gap: 8px; }
.attention li { border: 1px solid var(--line); border-left: 5px solid; border-radius: 6px; padding: 8px 12px; }
.attention li.is-denied { background: var(--bad-bg); border-left-color: var(--bad); }
.attention li.is-held { background: var(--warn-bg); border-left-color: #bf8700; }
.attention .what { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: baseline; }
.attention code.q { display: block; margin-top: 4px; white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: var(--muted); font-style: italic; }
.filters { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: center; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin-bottom: 14px; box-shadow: 0 1px 3px rgba(0,0,0,.06); }
.filters label { color: var(--muted); font-size: 12.5px; display: flex; gap: 6px; align-items: center; }
.filters select, .filters input, .filters button { font: inherit; font-size: 13px; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--fg); }
.filters input { width: 220px; }
.filters button { cursor: pointer; }
#match-count { margin-left: auto; font-weight: 600; }
.session { border: 1px solid var(--line); border-radius: 8px; margin-bottom: 16px; overflow: hidden; }
.session-head { background: var(--bg); border-bottom: 1px solid var(--line); padding: 8px 12px; display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: baseline; }
.session-head .meta { color: var(--muted); font-size: 12.5px; }
.session-events { margin: 0; padding: 6px 12px 6px 30px; font-size: 12.5px; color: var(--warn); border-bottom: 1px solid var(--line); }
.command { padding: 8px 12px 10px; border-top: 1px solid #eaeef2; border-left: 5px solid transparent; background: #fff; }
.session-head + .command, .session-events + .command { border-top: 0; }
.command-none { padding: 8px 12px; }
.command.is-denied { background: #fff0ee; border-left-color: var(--bad); }
.command.is-held { background: #fffbe6; border-left-color: #bf8700; }
.command.is-error { border-left-color: #fb8f44; }
.command:target { outline: 2px solid #0969da; outline-offset: -2px; }
.cmd-head { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; }
.cmd-head time { font-family: var(--mono); font-size: 12px; color: var(--muted); }
.cmd-head .cid { font-family: var(--mono); font-size: 12px; font-weight: 600; text-decoration: none; }
.cmd-head .rule { font-family: var(--mono); font-size: 12px; }
.cmd-head .meta { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 11.5px; font-weight: 700; line-height: 18px; border: 1px solid transparent; text-transform: uppercase; letter-spacing: .03em; }
.d-allow { background: #eef1f4; color: #3d444d; } .d-deny { background: var(--bad); color: #fff; } .d-approve { background: #bf8700; color: #fff; } .d-none { background: #eef1f4; color: var(--muted); }
.o-ok { color: var(--ok); border-color: #4ac26b; } .o-error { color: #bc4c00; border-color: #fb8f44; } .o-denied { color: var(--bad); border-color: #ff8182; }
.o-held, .o-unfinished, .o-skipped { color: var(--warn); border-color: #d4a72c; }
.b-masked { background: #ddf4ff; color: #0550ae; } .b-trust { background: #82071e; color: #fff; }
pre.cmd-text, pre.fields, pre.sample-text { margin: 6px 0 0; padding: 6px 10px; background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 320px; overflow: auto; }
.command.is-denied pre.cmd-text, .command.is-held pre.cmd-text { background: rgba(255,255,255,.7); }
pre.fields, pre.sample-text { font-size: 12px; }
.line { margin-top: 4px; font-size: 13px; overflow-wrap: anywhere; }
.line .k { color: var(--muted); }
.line.err { color: #a40e26; }
table.sample { border-collapse: collapse; margin-top: 2px; font-family: var(--mono); font-size: 12px; max-width: 100%; display: block; overflow-x: auto; }
.sample-caption { margin-top: 6px; color: var(--muted); font-size: 12px; }
table.sample th, table.sample td { border: 1px solid #d8dee4; padding: 1px 8px; text-align: left; white-space: pre; max-width: 420px; overflow: hidden; text-overflow: ellipsis; }
table.sample th { background: #f6f8fa; font-weight: 600; }
td.null { color: var(--muted); font-style: italic; }
td.masked { background: #ddf4ff; color: #0550ae; }
details.events { margin-top: 24px; }
details.events summary { cursor: pointer; color: var(--muted); }
details.events ul { font-size: 12.5px; }
footer { margin-top: 32px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { font-size: 10.5pt; } main { max-width: none; padding: 0; }
  .filters { display: none; }
  .session, .command, .attention li, .panel, .card { break-inside: avoid; }
  pre.cmd-text, pre.fields, pre.sample-text { max-height: none; overflow: visible; }
  a { color: inherit; text-decoration: none; }
  details.events > * { display: block; }
}
`;

export const REPORT_JS = `
(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var target = byId('filter-target'), decision = byId('filter-decision'), outcome = byId('filter-outcome');
  var text = byId('filter-text'), count = byId('match-count'), reset = byId('filter-reset');
  if (!target || !count) return;
  var commands = Array.prototype.slice.call(document.querySelectorAll('.command'));
  var sessions = Array.prototype.slice.call(document.querySelectorAll('.session'));
  var textOf = commands.map(function (c) { var p = c.querySelector('.cmd-text'); return p ? p.textContent.toLowerCase() : ''; });
  function apply() {
    var t = target.value, d = decision.value, o = outcome.value, q = text.value.trim().toLowerCase(), shown = 0;
    commands.forEach(function (c, i) {
      var ok = (!t || c.getAttribute('data-target') === t) && (!d || c.getAttribute('data-decision') === d) &&
        (!o || c.getAttribute('data-outcome') === o) && (!q || textOf[i].indexOf(q) !== -1);
      c.hidden = !ok;
      if (ok) shown++;
    });
    var filtering = !!(t || d || o || q);
    sessions.forEach(function (s) {
      s.hidden = filtering && !s.querySelector('.command:not([hidden])');
    });
    count.textContent = shown + ' of ' + commands.length + ' command' + (commands.length === 1 ? '' : 's');
    byId('no-match').hidden = shown > 0 || commands.length === 0;
  }
  function clear() { target.value = ''; decision.value = ''; outcome.value = ''; text.value = ''; apply(); }
  [target, decision, outcome].forEach(function (el) { el.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  reset.addEventListener('click', clear);
  // A link to a command the filters hide (from the needs-attention list) clears the filters first.
  document.addEventListener('click', function (e) {
    var a = e.target && e.target.closest ? e.target.closest('a[href^="#cmd-"]') : null;
    if (!a) return;
    var el = byId(decodeURIComponent(a.getAttribute('href').slice(1)));
    if (el && el.hidden) clear();
  });
  apply();
})();
`;

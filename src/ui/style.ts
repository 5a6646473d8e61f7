// The dashboard's one stylesheet, served at /ui/style.css: readable tables, visible focus, a
// layout that holds on a phone. No framework.
export const STYLE = `
:root { color-scheme: light dark; --fg: #1d2430; --muted: #5b6575; --bg: #ffffff; --line: #d7dce3; --accent: #0b57d0; --ok: #137333; --bad: #b3261e; --band: #f3f5f8; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #a3adbb; --bg: #14171c; --line: #333a45; --accent: #8ab4f8; --ok: #81c995; --bad: #f28b82; --band: #1c2027; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5em 1em; }
.skip:focus { left: 1em; z-index: 1; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1em 2em; padding: .75em 1.5em; border-bottom: 1px solid var(--line); background: var(--band); }
.brand { font-weight: 700; }
nav ul { display: flex; flex-wrap: wrap; gap: .25em 1.25em; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; border-bottom: 2px solid var(--accent); }
.tools { margin-left: auto; display: flex; gap: 1em; align-items: center; }
.tools form { margin: 0; }
main { padding: 1em 1.5em 3em; max-width: 1400px; }
main:focus { outline: none; }
h1 { font-size: 1.5em; margin: .25em 0 .75em; }
h2 { font-size: 1.2em; margin-top: 1.75em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { text-align: left; vertical-align: top; padding: .4em .6em; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
thead th { background: var(--band); font-weight: 600; }
small { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 1em; margin: 0 0 1em; }
.cards div { border: 1px solid var(--line); border-radius: 6px; padding: .75em 1em; }
.cards dt { color: var(--muted); font-size: .9em; }
.cards dd { margin: .25em 0 0; font-size: 1.25em; }
.fields { display: grid; grid-template-columns: max-content 1fr; gap: .35em 1.5em; }
.fields dt { color: var(--muted); }
.fields dd { margin: 0; }
.ok { color: var(--ok); }
.bad, .error { color: var(--bad); }
.status { display: inline-block; padding: 0 .5em; border-radius: 1em; border: 1px solid currentColor; font-size: .9em; }
.status-done { color: var(--ok); }
.status-dead { color: var(--bad); }
.status-retry, .status-pending, .status-running { color: var(--accent); }
.filters { display: flex; flex-wrap: wrap; gap: .75em 1.25em; align-items: end; margin-bottom: 1em; }
.filters label { display: flex; flex-direction: column; font-size: .9em; color: var(--muted); gap: .2em; }
input, select, button, .button { font: inherit; padding: .35em .6em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
button, .button { cursor: pointer; background: var(--accent); color: var(--bg); border-color: var(--accent); text-decoration: none; display: inline-block; }
.tools button { background: transparent; color: var(--accent); }
.login { display: flex; flex-direction: column; gap: .6em; max-width: 28em; }
.confirm p { max-width: 50em; }
.flash { border-left: 4px solid var(--ok); padding: .5em 1em; background: var(--band); }
pre { background: var(--band); padding: 1em; overflow: auto; max-height: 60vh; border-radius: 4px; }
.hint { color: var(--muted); font-size: .9em; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

//! The HTML page: the figures' specifications and data, the Vega runtimes, a summary table of
//! national indices, the definitions of the indices and the run's provenance, in one file.

use std::fmt::Write as _;

use exdep_core::schema::NATIONAL;
use exdep_store::RunManifest;
use serde_json::Value;

use crate::error::Result;
use crate::figures::Figure;
use crate::scope::Scope;

/// Vega 6.4.0 and Vega-Lite 6.5.0, as published on npm (see `assets/README.md`).
const VEGA: &str = include_str!("../assets/vega.min.js");
const VEGA_LITE: &str = include_str!("../assets/vega-lite.min.js");

/// The page allows no request at all: scripts, styles and data are inline, images are data
/// URLs. Vega compiles its expressions with `Function`, hence `unsafe-eval`.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; \
                      style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1320px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; }
p.reading { color: #555; font-style: italic; margin-top: .2rem; }
table { border-collapse: collapse; font-size: .85rem; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: right; }
th { background: #f4f4f4; } td.text { text-align: left; }
.figure { overflow-x: auto; } .vega-bindings { margin: .5rem 0; }
.vega-bind { display: inline-block; margin-right: 1rem; }
#report-errors { color: #b00; white-space: pre-wrap; }
dl dt { font-weight: 600; margin-top: .6rem; } dl dd { margin-left: 1rem; }
";

/// Draws every figure with Vega, records any error (a script error, a console error, a
/// request the policy blocked) in `#report-errors`, and marks each figure, then the page,
/// as rendered.
const SCRIPT: &str = r#"
(function () {
  const errors = document.getElementById('report-errors');
  const record = (message) => { errors.textContent += message + '\n'; };
  window.addEventListener('error', (e) => record('error: ' + e.message));
  document.addEventListener('securitypolicyviolation',
    (e) => record('blocked request: ' + e.blockedURI + ' (' + e.violatedDirective + ')'));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { record('console: ' + args.join(' ')); consoleError(...args); };
  const specs = JSON.parse(document.getElementById('report-specs').textContent);
  const runs = Object.entries(specs).map(([id, spec]) => {
    const compiled = vegaLite.compile(spec).spec;
    const view = new vega.View(vega.parse(compiled), {
      renderer: 'svg', container: '#' + id, bind: '#' + id + '-controls', hover: true,
    });
    return view.runAsync().then(() => {
      document.getElementById(id).dataset.rendered = 'true';
    }).catch((e) => record(id + ': ' + e));
  });
  Promise.all(runs).then(() => { document.body.dataset.rendered = 'true'; });
})();
"#;

/// The definitions section: each index with its formula.
const DEFINITIONS: [(&str, &str); 10] = [
    (
        "G, geographic concentration (hhi)",
        "G = Σ s_i², the Herfindahl-Hirschman index of the shares s_i = x_i / X of the \
         origin's exports of a category going to each destination i; from 1/N (equal shares) \
         to 1 (one destination).",
    ),
    (
        "V, market diversification (entropy)",
        "V = −Σ s_i ln s_i, in nats; from 0 (one destination) to ln N (equal shares).",
    ),
    ("Evenness", "V / ln N, from 0 to 1."),
    (
        "Theil index and its decomposition",
        "T = ln N − V = T_between + T_within, with T_between = Σ_g S_g ln(S_g N / N_g) over \
         destination regions g (S_g their share, N_g their number of destinations) and \
         T_within = Σ_g S_g (ln N_g − V_g).",
    ),
    (
        "Equivalent markets",
        "1 / G: the number of equal destinations that would give the same concentration.",
    ),
    (
        "Location quotient",
        "LQ = (e_rm / e_r) / (e_m / e_N): the share of category m in the origin's exports to \
         destination r over its share in all the origin's exports. Figure 6 uses regions: the \
         region's share of the category's exports over its share of all exports.",
    ),
    (
        "Non-equilibrium specialization",
        "Σ_r |e_rm / e_m − e_r / e_N| over the origin's destinations r: how far the \
         destinations of category m depart from those of all the origin's exports, from 0 to 2.",
    ),
    (
        "Regional share",
        "The origin's exports of a category to a region's destinations over its exports of \
         the category.",
    ),
    (
        "Growth margins",
        "X_t − X_(t−1) = new − lost + intensive: exports in t to destinations with none in \
         t−1, exports in t−1 to destinations with none in t, and the change over continuing \
         destinations.",
    ),
    (
        "Destination status",
        "Against the base year: stayed (above the threshold in both), entered (above now, not \
         then), left (above then, not now).",
    ),
];

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON to place inside a `<script>` element: `<` is escaped, so no string in it can end
/// the element.
fn script_json(value: &Value) -> Result<String> {
    Ok(serde_json::to_string(value)?.replace('<', "\\u003c"))
}

pub(crate) fn render(
    scope: &Scope,
    figures: &[Figure],
    summary: &[Value],
    manifest: Option<&RunManifest>,
) -> Result<String> {
    let specs: serde_json::Map<String, Value> = figures
        .iter()
        .map(|figure| (figure.id.to_string(), figure.spec.clone()))
        .collect();
    let mut html = String::new();
    let title = format!(
        "Export dependence of China's provinces, {}-{}",
        scope.first, scope.last
    );
    write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{POLICY}\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p>Figures drawn from the published tables by exdep {version}; \
         {province} is shown beside the nation. Hover a mark for its values.</p>\n\
         <pre id=\"report-errors\"></pre>\n",
        title = escape(&title),
        version = env!("CARGO_PKG_VERSION"),
        province = escape(&scope.origin_name(&scope.province)),
    )
    .expect("writing to a string");
    html.push_str(&summary_table(summary));
    for (number, figure) in figures.iter().enumerate() {
        write!(
            html,
            "<section>\n<h2>Figure {n}. {title}</h2>\n\
             <div id=\"{id}-controls\"></div>\n<div id=\"{id}\" class=\"figure\"></div>\n\
             <p class=\"reading\">{reading}</p>\n</section>\n",
            n = number + 1,
            title = escape(&figure.title),
            id = figure.id,
            reading = escape(&figure.reading),
        )
        .expect("writing to a string");
    }
    html.push_str("<section>\n<h2>Definitions</h2>\n<dl>\n");
    for (term, definition) in DEFINITIONS {
        writeln!(
            html,
            "<dt>{}</dt><dd>{}</dd>",
            escape(term),
            escape(definition)
        )
        .expect("writing to a string");
    }
    html.push_str("</dl>\n</section>\n");
    html.push_str(&provenance(manifest));
    write!(
        html,
        "<script type=\"application/json\" id=\"report-specs\">{specs}</script>\n\
         <script>{VEGA}</script>\n<script>{VEGA_LITE}</script>\n<script>{SCRIPT}</script>\n\
         </body>\n</html>\n",
        specs = script_json(&Value::Object(specs))?,
    )
    .expect("writing to a string");
    Ok(html)
}

/// The national G and V per year and category, rounded to 4 digits, as a table.
fn summary_table(summary: &[Value]) -> String {
    let mut html = format!(
        "<section>\n<h2>National indices ({NATIONAL})</h2>\n<table id=\"summary\">\n\
         <tr><th>Year</th><th>Category</th><th>G (HHI)</th><th>V (entropy)</th></tr>\n"
    );
    let number = |value: &Value| {
        value
            .as_f64()
            .map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
    };
    for row in summary {
        writeln!(
            html,
            "<tr><td>{}</td><td class=\"text\">{}</td><td>{}</td><td>{}</td></tr>",
            row["year"],
            escape(row["category"].as_str().unwrap_or_default()),
            number(&row["hhi"]),
            number(&row["entropy"]),
        )
        .expect("writing to a string");
    }
    html.push_str("</table>\n</section>\n");
    html
}

/// The run that published the tables, from its manifest: when, which exdep, the inputs with
/// their fingerprints, the code tables with their hashes.
fn provenance(manifest: Option<&RunManifest>) -> String {
    let mut html = String::from("<section>\n<h2>Provenance</h2>\n");
    let Some(manifest) = manifest else {
        html.push_str("<p>The output has no manifest: a run is publishing or was killed.</p>\n");
        html.push_str("</section>\n");
        return html;
    };
    writeln!(
        html,
        "<p>Published by exdep {} in a run from {} to {}, config {} (SHA-256 {}).</p>",
        escape(&manifest.exdep_version),
        escape(&manifest.started),
        escape(&manifest.finished),
        escape(&manifest.config.path),
        escape(&manifest.config.sha256),
    )
    .expect("writing to a string");
    html.push_str(
        "<table id=\"inputs\">\n<tr><th>Input</th><th>Bytes</th><th>Modified</th>\
         <th>Entity tag</th><th>Records read</th></tr>\n",
    );
    for input in &manifest.inputs {
        let source = &input.source;
        writeln!(
            html,
            "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&source.file),
            source.bytes,
            escape(&source.last_modified),
            escape(source.e_tag.as_deref().unwrap_or("—")),
            input.read,
        )
        .expect("writing to a string");
    }
    html.push_str(
        "</table>\n<table id=\"code-tables\">\n<tr><th>Code table</th>\
                   <th>Location</th><th>SHA-256</th></tr>\n",
    );
    for (name, digest) in &manifest.code_tables {
        writeln!(
            html,
            "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td></tr>",
            escape(name),
            escape(&digest.location),
            escape(&digest.sha256),
        )
        .expect("writing to a string");
    }
    html.push_str("</table>\n</section>\n");
    html
}

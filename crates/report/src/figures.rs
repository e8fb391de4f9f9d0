//! The eight figures: for each, the query of the published tables that gives its data and
//! the Vega-Lite specification that draws it.

use exdep_core::schema::{CATEGORIES, NATIONAL};
use exdep_engine::datafusion::prelude::SessionContext;
use serde_json::{Value, json};

use crate::error::Result;
use crate::scope::{Scope, query};

/// One figure of the report.
pub(crate) struct Figure {
    /// The element it is drawn in.
    pub id: &'static str,
    /// Its heading.
    pub title: String,
    /// How to read it, in one line.
    pub reading: String,
    /// Its Vega-Lite specification, data included.
    pub spec: Value,
}

/// The categories in the order the figures list them: the four, then `all`.
fn category_order() -> Vec<&'static str> {
    let mut order = CATEGORIES.to_vec();
    order.push("all");
    order
}

/// A selector of the year, bound to a drop-down, starting at the last year.
fn year_selector(scope: &Scope) -> Value {
    json!({
        "name": "year",
        "value": scope.last,
        "bind": {"input": "select", "options": scope.years, "name": "Year "}
    })
}

/// The province names, for a lookup transform.
fn names(scope: &Scope) -> Value {
    let mut names: Vec<Value> = scope
        .names
        .iter()
        .map(|(code, name)| json!({"code": code, "name": name}))
        .collect();
    names.push(json!({"code": NATIONAL, "name": "China (national)"}));
    Value::Array(names)
}

/// The transforms of a figure of the selected year's rows: keep those rows, name the
/// provinces, then `more`.
fn of_the_selected_year<const N: usize>(scope: &Scope, more: [Value; N]) -> Value {
    let mut transforms = vec![json!({"filter": "datum.year == year"}), with_names(scope)];
    transforms.extend(more);
    Value::Array(transforms)
}

/// Adds each row's origin name (field `name`) from its `province` code.
fn with_names(scope: &Scope) -> Value {
    json!({
        "lookup": "province",
        "from": {"data": {"values": names(scope)}, "key": "code", "fields": ["name"]}
    })
}

/// Every figure; the product margins' only when `product_margins` is published.
pub(crate) async fn all(
    ctx: &SessionContext,
    scope: &Scope,
    products: bool,
) -> Result<Vec<Figure>> {
    let mut figures = vec![
        region_shares(ctx, scope).await?,
        destinations(ctx, scope).await?,
        top_links(ctx, scope).await?,
        concentration_diversification(ctx, scope).await?,
        specialization(ctx, scope).await?,
        location_quotients(ctx, scope).await?,
        margins(ctx, scope).await?,
    ];
    if products {
        figures.push(product_margins(ctx, scope).await?);
    }
    figures.push(tile_map(ctx, scope).await?);
    Ok(figures)
}

/// Figure 1: regional shares per category over the years, national and the province.
async fn region_shares(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, province, region, category, share, exports_usd / 1e8 AS exports \
             FROM region_shares WHERE province IN ('{NATIONAL}', '{}') AND {} \
             ORDER BY year, province, region, category",
            scope.province,
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "region-shares",
        title: format!(
            "Regional export shares by category, {}-{}: {} and {}",
            scope.first,
            scope.last,
            scope.origin_name(NATIONAL),
            scope.origin_name(&scope.province)
        ),
        reading: "Each bar splits one year's exports of a category by destination region; a \
                  band that widens over the years is a region gaining weight."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "transform": [with_names(scope)],
            "facet": {
                "row": {"field": "name", "type": "nominal", "title": "Origin"},
                "column": {"field": "category", "type": "nominal", "title": "Category",
                           "sort": category_order()}
            },
            "spec": {
                "width": 130, "height": 150,
                "mark": "bar",
                "encoding": {
                    "x": {"field": "year", "type": "ordinal", "title": "Year"},
                    "y": {"field": "share", "type": "quantitative", "stack": "normalize",
                          "title": "Share of exports (%)", "axis": {"format": "%"}},
                    "color": {"field": "region", "type": "nominal",
                              "title": "Destination region", "scale": {"scheme": "tableau20"}},
                    "tooltip": [
                        {"field": "region", "title": "Region"},
                        {"field": "year", "title": "Year"},
                        {"field": "share", "title": "Share", "format": ".2%"},
                        {"field": "exports", "title": "Exports (10^8 USD)", "format": ",.1f"}
                    ]
                }
            }
        }),
    })
}

/// Figure 2: destinations above the threshold, entered, left or stayed against the base
/// year.
async fn destinations(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, partner, region, exports_cny / 1e8 AS exports_cny, status \
             FROM destinations WHERE status <> 'never' AND {} ORDER BY year, partner",
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "destinations",
        title: format!(
            "Destinations above {} × 10^8 yuan, against {}",
            scope.threshold_100m_cny, scope.base_year
        ),
        reading: format!(
            "One row per destination economy above the line in {} or in a later year; its \
             cells say whether it stayed above, entered or left, and the label gives exports \
             in 10^8 yuan.",
            scope.base_year
        ),
        spec: json!({
            "data": {"values": rows},
            "encoding": {
                "x": {"field": "year", "type": "ordinal", "title": "Year"},
                "y": {"field": "partner", "type": "nominal",
                      "title": "Destination economy (ISO 3166 alpha-3)",
                      "sort": {"field": "exports_cny", "op": "max", "order": "descending"}}
            },
            "layer": [
                {
                    "mark": {"type": "rect", "stroke": "white"},
                    "encoding": {
                        "color": {"field": "status", "type": "nominal",
                                  "title": format!("Against {}", scope.base_year),
                                  "scale": {"domain": ["stayed", "entered", "left"],
                                            "range": ["#4c78a8", "#54a24b", "#e45756"]}},
                        "tooltip": [
                            {"field": "partner", "title": "Destination"},
                            {"field": "region", "title": "Region"},
                            {"field": "year", "title": "Year"},
                            {"field": "exports_cny", "title": "Exports (10^8 CNY)",
                             "format": ",.0f"},
                            {"field": "status", "title": "Status"}
                        ]
                    }
                },
                {
                    "mark": {"type": "text", "fontSize": 9, "color": "white"},
                    "encoding": {"text": {"field": "exports_cny", "format": ",.0f"}}
                }
            ],
            "width": {"step": 70},
            "height": {"step": 18}
        }),
    })
}

/// Figure 3: the strongest province-partner links per category, for the selected year.
async fn top_links(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, category, rank, province, partner, exports_usd / 1e8 AS exports, \
             share_of_category FROM top_links WHERE {} ORDER BY year, category, rank",
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "top-links",
        title: "The strongest province-partner links by category".into(),
        reading: "Bars rank the links with the largest exports in the selected year; the \
                  label is the link's share of national exports of the category."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "params": [year_selector(scope)],
            "transform": of_the_selected_year(scope, [
                // The rank leads the label, zero-padded, so that the links sort by it.
                json!({"calculate": "pad(datum.rank, 2, '0', 'left') + '. ' + datum.name \
                                     + ' → ' + datum.partner", "as": "link"})
            ]),
            "facet": {"field": "category", "type": "nominal", "title": "Category",
                      "sort": category_order()},
            "columns": 3,
            "resolve": {"scale": {"y": "independent"}},
            "spec": {
                "width": 200,
                "height": {"step": 16},
                "encoding": {
                    "y": {"field": "link", "type": "nominal",
                          "title": "Rank. province → partner"},
                    "x": {"field": "exports", "type": "quantitative",
                          "title": "Exports (10^8 USD)"}
                },
                "layer": [
                    {
                        "mark": "bar",
                        "encoding": {
                            "color": {"field": "category", "type": "nominal",
                                      "title": "Category", "sort": category_order()},
                            "tooltip": [
                                {"field": "rank", "title": "Rank"},
                                {"field": "link", "title": "Link"},
                                {"field": "exports", "title": "Exports (10^8 USD)",
                                 "format": ",.1f"},
                                {"field": "share_of_category", "title": "Share of category",
                                 "format": ".2%"}
                            ]
                        }
                    },
                    {
                        "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 9},
                        "encoding": {"text": {"field": "share_of_category", "format": ".1%"}}
                    }
                ]
            }
        }),
    })
}

/// Figure 4: provinces in the concentration (G) / diversification (V) plane per category,
/// with the year's cross-province means (dashed) and the base year's (solid): against the
/// fixed base-year lines, a common move of all provinces shows.
async fn concentration_diversification(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT i.year, i.province, i.category, i.hhi, i.entropy, i.quadrant,
                b.base_hhi, b.base_entropy
             FROM indices i
             JOIN (SELECT category, avg(hhi) AS base_hhi, avg(entropy) AS base_entropy
                   FROM indices WHERE province IN ({provinces}) AND year = {base_year}
                   GROUP BY category) b
               ON i.category = b.category
             WHERE i.province IN ({provinces}) AND i.{years}
             ORDER BY i.year, i.category, i.province",
            provinces = scope.provinces,
            base_year = scope.base_year,
            years = scope.years_sql()
        ),
    )
    .await?;
    // The rule of `field`'s mean (over the selected year's provinces, or of a column that
    // holds the base year's mean on every row) on `channel`.
    let mean_rule = |field: &str, channel: &str, dash: Value| {
        let mean = format!("mean_{field}");
        json!({
            "transform": [{"aggregate": [{"op": "mean", "field": field, "as": mean}]}],
            "mark": {"type": "rule", "strokeDash": dash, "color": "#888"},
            "encoding": {channel: {"field": mean, "type": "quantitative"}}
        })
    };
    Ok(Figure {
        id: "concentration-diversification",
        title: "Geographic concentration G against market diversification V, by category".into(),
        reading: format!(
            "Each point is a province; dashed lines are the year's means over provinces, \
             solid lines {}'s, so the upper left quadrant (II) holds balanced exporters with \
             low G and high V, and a move of all provinces toward it shows against the solid \
             lines. Colours are the quadrants as `quadrant-cut` places them.",
            scope.base_year
        ),
        spec: json!({
            "data": {"values": rows},
            "params": [year_selector(scope)],
            "transform": of_the_selected_year(scope, []),
            "facet": {"column": {"field": "category", "type": "nominal", "title": "Category",
                                 "sort": category_order()}},
            "spec": {
                "width": 180, "height": 180,
                "layer": [
                    {
                        "mark": {"type": "point", "filled": true, "size": 40},
                        "encoding": {
                            "x": {"field": "hhi", "type": "quantitative",
                                  "title": "G: HHI of destination shares (0-1)",
                                  "scale": {"zero": false}},
                            "y": {"field": "entropy", "type": "quantitative",
                                  "title": "V: entropy of destination shares (nats)",
                                  "scale": {"zero": false}},
                            "color": {"field": "quadrant", "type": "nominal",
                                      "title": "Quadrant", "sort": ["I", "II", "III", "IV"]},
                            "tooltip": [
                                {"field": "name", "title": "Province"},
                                {"field": "hhi", "title": "G", "format": ".4f"},
                                {"field": "entropy", "title": "V", "format": ".4f"},
                                {"field": "quadrant", "title": "Quadrant"}
                            ]
                        }
                    },
                    mean_rule("hhi", "x", json!([4, 3])),
                    mean_rule("entropy", "y", json!([4, 3])),
                    mean_rule("base_hhi", "x", json!([])),
                    mean_rule("base_entropy", "y", json!([]))
                ]
            }
        }),
    })
}

/// A heat map with a row per province (by name) and a column per value of `x`, each cell
/// coloured by `color`; the tooltip names the province, then `tooltip`'s fields.
fn province_heat_map(column_width: u32, x: Value, color: Value, tooltip: Value) -> Value {
    let mut fields = vec![json!({"field": "name", "title": "Province"})];
    fields.extend(tooltip.as_array().into_iter().flatten().cloned());
    json!({
        "width": {"step": column_width},
        "height": {"step": 12},
        "mark": "rect",
        "encoding": {
            "x": x,
            "y": {"field": "name", "type": "nominal", "title": "Province"},
            "color": color,
            "tooltip": fields
        }
    })
}

/// Figure 5: non-equilibrium specialization, province x category x year.
async fn specialization(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, province, category, specialization FROM indices \
             WHERE province IN ({}) AND category <> 'all' AND specialization IS NOT NULL \
             AND {} ORDER BY year, category, province",
            scope.provinces,
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "specialization",
        title: "Non-equilibrium specialization by province, category and year".into(),
        reading: "Darker cells are provinces whose export destinations for the category \
                  differ most from the pattern of all their exports (0 = the same, 2 = \
                  disjoint)."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "transform": [with_names(scope)],
            "facet": {"column": {"field": "category", "type": "nominal", "title": "Category",
                                 "sort": category_order()}},
            "spec": province_heat_map(
                22,
                json!({"field": "year", "type": "ordinal", "title": "Year"}),
                json!({"field": "specialization", "type": "quantitative",
                       "title": "Specialization (0-2)", "scale": {"scheme": "blues"}}),
                json!([
                    {"field": "year", "title": "Year"},
                    {"field": "specialization", "title": "Specialization", "format": ".4f"}
                ]),
            ),
        }),
    })
}

/// Figure 6: location quotients by province and destination region, for a chosen category.
async fn location_quotients(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    // A region's quotient: its share of the category's exports over its share of all
    // exports, (e_gm / e_m) / (e_g / e_N), from the regional shares.
    let rows = query(
        ctx,
        &format!(
            "SELECT m.year, m.province, m.region, m.category, m.share / a.share AS lq \
             FROM region_shares m JOIN region_shares a ON m.year = a.year \
             AND m.province = a.province AND m.region = a.region AND a.category = 'all' \
             WHERE m.category <> 'all' AND m.province IN ({}) AND a.share > 0 \
             AND m.{} ORDER BY m.year, m.category, m.province, m.region",
            scope.provinces,
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "location-quotients",
        title: "Location quotients by province and destination region".into(),
        reading: "Blue cells (above 1) are regions that take more of the category than of \
                  the province's exports overall; red cells (below 1) take less."
            .into(),
        spec: {
            let mut spec = province_heat_map(
                40,
                json!({"field": "region", "type": "nominal", "title": "Destination region"}),
                json!({"field": "lq", "type": "quantitative", "title": "Location quotient",
                       "scale": {"type": "log", "scheme": "redblue", "domainMid": 1}}),
                json!([
                    {"field": "region", "title": "Region"},
                    {"field": "lq", "title": "LQ", "format": ".3f"}
                ]),
            );
            spec["data"] = json!({"values": rows});
            spec["params"] = json!([
                year_selector(scope),
                {"name": "category", "value": CATEGORIES[0],
                 "bind": {"input": "select", "options": CATEGORIES, "name": "Category "}}
            ]);
            spec["transform"] = json!([
                {"filter": "datum.year == year && datum.category == category"},
                with_names(scope)
            ]);
            spec
        },
    })
}

/// Figure 7: growth margins (new, lost, intensive) by region, national and the province.
async fn margins(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, province, region, new / 1e8 AS new, -lost / 1e8 AS lost, \
             intensive / 1e8 AS intensive FROM margins WHERE category = 'all' \
             AND region <> 'all' AND province IN ('{NATIONAL}', '{}') AND {} \
             ORDER BY year, province, region",
            scope.province,
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "margins",
        title: "Growth margins by destination region, all goods".into(),
        reading: "Each bar stacks the year's change in exports to a region: new destinations \
                  and continuing ones (intensive) above zero when they grew, lost ones below."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "params": [year_selector(scope)],
            "transform": of_the_selected_year(scope, [
                json!({"fold": ["new", "lost", "intensive"], "as": ["margin", "value"]})
            ]),
            "facet": {"row": {"field": "name", "type": "nominal", "title": "Origin"}},
            "resolve": {"scale": {"y": "independent"}},
            "spec": margin_bars(560, 160, ["new", "intensive", "lost"])
        }),
    })
}

/// Figure 7b (with `product-margins = true`): the nation's growth to each destination region
/// per category, split into new HS6 products (the extensive margin), continuing ones (the
/// intensive margin) and lost ones: the study's finding, read from the data.
async fn product_margins(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, province, category, region, new_usd / 1e8 AS new, \
             -lost_usd / 1e8 AS lost, \
             continuing_usd / 1e8 AS continuing FROM product_margins \
             WHERE province = '{NATIONAL}' AND partner = 'all' AND region <> 'all' \
             AND category <> 'all' AND {} ORDER BY year, category, region",
            scope.years_sql()
        ),
    )
    .await?;
    Ok(Figure {
        id: "product-margins",
        title: "Extensive and intensive product margins by destination region and category, \
                national"
            .into(),
        reading: "Each bar stacks the year's change in the nation's exports of a category to a \
                  region over HS6 products: lines new to a destination (the extensive margin) \
                  and continuing lines (the intensive margin) above zero when they grew, lost \
                  lines below."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "params": [year_selector(scope)],
            "transform": of_the_selected_year(scope, [
                json!({"fold": ["new", "continuing", "lost"], "as": ["margin", "value"]})
            ]),
            "facet": {"column": {"field": "category", "type": "nominal", "title": "Category",
                                 "sort": category_order()}},
            "resolve": {"scale": {"y": "independent"}},
            "spec": margin_bars(200, 180, ["new", "continuing", "lost"])
        }),
    })
}

/// Bars of each destination region's change from the previous year (field `value`, 10^8
/// USD), stacked by margin (field `margin`): `margins` are the growing one, the continuing
/// one and the lost one, coloured green, blue and red.
fn margin_bars(width: u32, height: u32, margins: [&str; 3]) -> Value {
    json!({
        "width": width, "height": height,
        "mark": "bar",
        "encoding": {
            "x": {"field": "region", "type": "nominal", "title": "Destination region"},
            "y": {"field": "value", "type": "quantitative",
                  "title": "Change from the previous year (10^8 USD)"},
            "color": {"field": "margin", "type": "nominal", "title": "Margin",
                      "scale": {"domain": margins,
                                "range": ["#54a24b", "#4c78a8", "#e45756"]}},
            "tooltip": [
                {"field": "region", "title": "Region"},
                {"field": "margin", "title": "Margin"},
                {"field": "value", "title": "10^8 USD", "format": ",.2f"}
            ]
        }
    })
}

/// The indices the tile map can colour the provinces by.
const MAP_INDICES: [(&str, &str); 6] = [
    ("hhi", "G: HHI (0-1)"),
    ("entropy", "V: entropy (nats)"),
    ("evenness", "evenness (0-1)"),
    ("theil", "Theil index"),
    ("equivalent_markets", "equivalent markets (1/G)"),
    ("exports", "exports (10^8 USD)"),
];

/// Figure 8: the 31 provinces on a tile grid, coloured by a chosen index.
async fn tile_map(ctx: &SessionContext, scope: &Scope) -> Result<Figure> {
    let rows = query(
        ctx,
        &format!(
            "SELECT year, province, category, hhi, entropy, evenness, theil, \
             equivalent_markets, exports_usd / 1e8 AS exports FROM indices \
             WHERE province IN ({}) AND {} ORDER BY year, category, province",
            scope.provinces,
            scope.years_sql()
        ),
    )
    .await?;
    let tiles: Vec<Value> = scope
        .tiles
        .iter()
        .map(|(code, (row, column))| json!({"province": code, "row": row, "column": column}))
        .collect();
    let fields: Vec<&str> = MAP_INDICES.iter().map(|(field, _)| *field).collect();
    let labels: Vec<&str> = MAP_INDICES.iter().map(|(_, label)| *label).collect();
    Ok(Figure {
        id: "tile-map",
        title: "Provinces on a tile grid, coloured by an index".into(),
        reading: "Each tile is a province placed roughly where it lies; choose the index, \
                  category and year above the map."
            .into(),
        spec: json!({
            "data": {"values": rows},
            "params": [
                year_selector(scope),
                {"name": "category", "value": "all",
                 "bind": {"input": "select", "options": category_order(), "name": "Category "}},
                {"name": "index", "value": fields[0],
                 "bind": {"input": "select", "options": fields, "labels": labels,
                          "name": "Index "}}
            ],
            "transform": [
                {"filter": "datum.year == year && datum.category == category"},
                {"lookup": "province",
                 "from": {"data": {"values": tiles}, "key": "province",
                          "fields": ["row", "column"]}},
                with_names(scope),
                {"calculate": "datum[index]", "as": "value"}
            ],
            "width": {"step": 56},
            "height": {"step": 56},
            "encoding": {
                "x": {"field": "column", "type": "ordinal", "axis": null},
                "y": {"field": "row", "type": "ordinal", "axis": null}
            },
            "layer": [
                {
                    "mark": {"type": "rect", "stroke": "white", "strokeWidth": 2},
                    "encoding": {
                        "color": {"field": "value", "type": "quantitative",
                                  "title": "Selected index", "scale": {"scheme": "viridis"}},
                        "tooltip": [
                            {"field": "name", "title": "Province"},
                            {"field": "value", "title": "Value", "format": ",.4f"}
                        ]
                    }
                },
                {
                    "mark": {"type": "text", "fontSize": 9, "color": "white"},
                    "encoding": {"text": {"field": "province"}}
                }
            ]
        }),
    })
}

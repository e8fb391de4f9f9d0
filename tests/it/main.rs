//! exdep's integration tests: the `exdep` binary end to end, the index formulas on
//! hand-computed fixtures, their properties on random data, hostile input, and an independent
//! DuckDB recomputation of every table.

mod azure;
mod cli;
mod cluster;
mod ddl;
mod delta;
mod failures;
mod fixtures;
mod fuzz;
mod incremental;
mod memory;
mod months;
mod observe;
mod properties;
mod publication;
mod reference;
mod report;
mod s3;
mod sources;
mod status;
mod support;
mod views;

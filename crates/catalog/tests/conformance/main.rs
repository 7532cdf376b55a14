//! The catalogue's conformance suite, as one test binary: every test in it runs against both
//! engines (`conformance!` stamps `::sqlite` and `::postgres`; each PostgreSQL test gets a fresh
//! database from `TEST_DATABASE_URL`). Select a group by module, e.g. `--test conformance uploads::`.

#[macro_use]
mod common;

mod catalog;
mod cluster;
mod deliveries;
mod generic_templates;
mod pushes;
mod schema;
mod seed_and_plans;
mod templates;
mod uploads;

//! Reading the example templates the tests draw and compare.

use attest_template::{SourceFormat, Template};

pub fn example(name: &str) -> Template {
    let path = format!("{}/../../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    attest_template::parse(&source, SourceFormat::Yaml, Some(&path)).unwrap_or_else(|d| panic!("{path}: {d:?}"))
}

pub fn parse(yaml: &str) -> Template {
    attest_template::parse(yaml, SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("test template: {d:?}"))
}

//! The router and `docs/openapi.json` describe the same API: every (method, path) in one is in
//! the other, and the running router answers exactly those methods on those paths.

mod common;

use std::collections::BTreeSet;

use common::*;
use tensorwasmd::server::api::ROUTES;

const OPENAPI: &str = include_str!("../../docs/openapi.json");
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "PATCH"];

fn openapi_routes() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

fn router_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (m.to_string(), path.to_string())))
        .collect()
}

#[test]
fn openapi_and_router_list_the_same_routes() {
    assert_eq!(openapi_routes(), router_routes());
}

#[test]
fn the_running_router_answers_exactly_the_listed_methods() {
    let fx = Fixture::new();
    let d = fx.start(&[]);
    for (path, methods) in ROUTES {
        let concrete = path.replace("{name}", "x").replace("{export}", "f");
        for method in METHODS {
            let r = d.req(method, &concrete, None, b"");
            let code = if r.status == 200 {
                String::new()
            } else {
                r.code()
            };
            if methods.contains(method) {
                assert!(
                    code != "no-route" && code != "method-not-allowed",
                    "{method} {concrete}: {code}"
                );
            } else {
                assert_eq!(
                    (r.status, code.as_str()),
                    (405, "method-not-allowed"),
                    "{method} {concrete}"
                );
            }
        }
    }
}

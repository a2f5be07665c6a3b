//! A verified bundle signed again, its kernel table edited on the way: how the tests make a
//! table that a trusted key signed but that is malformed, or older than the tool.

use tensorwasm_bundle::{BundleWriter, SectionKind, SigningKey, VerifiedBundle};

/// `bundle`'s sections in order, the `offload` section's JSON passed through `edit`, under
/// the same manifest, signed by `key`.
pub fn with_table(
    bundle: &VerifiedBundle<'_>,
    key: &SigningKey,
    edit: &dyn Fn(&mut serde_json::Value),
) -> Vec<u8> {
    let mut manifest = bundle.manifest().clone();
    let sections = std::mem::take(&mut manifest.sections);
    let mut w = BundleWriter::new(manifest);
    for (i, s) in sections.iter().enumerate() {
        let mut data = bundle.section(i as u32).expect("section");
        if s.kind == SectionKind::Offload {
            let mut v: serde_json::Value = serde_json::from_slice(&data).expect("json");
            edit(&mut v);
            data = serde_json::to_vec(&v).expect("json");
        }
        w.add_section(s.kind, &data).expect("section");
    }
    w.finish(&[key]).expect("signed")
}

//! The Helm chart, checked offline (no `helm` binary here): the templates are rendered by a
//! small renderer that understands exactly the template subset the chart uses, each rendered
//! document must parse as YAML, and the result must have the structure an operator relies on —
//! GPU requests, probes on /healthz and /readyz, the bundle volume at the data directory, and a
//! config.toml that the daemon's own config parser accepts.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/helm/tensorwasmd");
const RELEASE: &str = "test";

fn lookup<'a>(values: &'a Yaml, path: &str) -> &'a Yaml {
    let mut v = values;
    for key in path.split('.') {
        v = &v[key];
    }
    assert!(
        !v.is_badvalue(),
        "template uses .Values.{path}, which values.yaml lacks"
    );
    v
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn to_yaml(v: &Yaml) -> String {
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(v)
        .expect("emit yaml");
    out.trim_start_matches("---")
        .trim_start_matches('\n')
        .to_string()
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let lines: Vec<String> = text.lines().map(|l| format!("{pad}{l}")).collect();
    format!("\n{}", lines.join("\n"))
}

/// Evaluates one `{{ ... }}` action (without delimiters and trim markers).
fn eval(action: &str, values: &Yaml) -> String {
    let (expr, pipe) = match action.split_once('|') {
        Some((e, p)) => (e.trim(), Some(p.trim())),
        None => (action.trim(), None),
    };
    let value = if expr == ".Release.Name" {
        RELEASE.to_string()
    } else if expr == "include \"tensorwasmd.fullname\" ." {
        format!("{RELEASE}-tensorwasmd")
    } else if expr == "include \"tensorwasmd.labels\" ." {
        format!("app.kubernetes.io/name: tensorwasmd\napp.kubernetes.io/instance: {RELEASE}")
    } else if let Some(path) = expr.strip_prefix("toYaml .Values.") {
        to_yaml(lookup(values, path))
    } else if let Some(path) = expr.strip_prefix(".Values.") {
        scalar(lookup(values, path))
    } else {
        panic!("template action the test renderer does not know: {{{{ {action} }}}}");
    };
    match pipe {
        None => value,
        Some("quote") => format!("{value:?}"),
        Some(p) if p.starts_with("nindent ") => indent(
            &value,
            p["nindent ".len()..].trim().parse().expect("nindent N"),
        ),
        Some(p) => panic!("unknown pipe {p}"),
    }
}

/// Renders a template: value actions, `if`/`else`/`end` on `.Values` paths, `{{-` trimming.
fn render(template: &str, values: &Yaml) -> String {
    let mut out = String::new();
    let mut stack: Vec<(bool, bool)> = Vec::new(); // (condition, in else branch)
    let active = |stack: &Vec<(bool, bool)>| stack.iter().all(|(c, e)| c != e);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let text = &rest[..start];
        let end = rest[start..].find("}}").expect("unclosed action") + start;
        let mut action = &rest[start + 2..end];
        if active(&stack) {
            out.push_str(text);
        }
        if let Some(a) = action.strip_prefix('-') {
            action = a;
            if active(&stack) {
                let trimmed = out.trim_end().len();
                out.truncate(trimmed);
            }
        }
        let action = action.trim().trim_end_matches('-').trim();
        if let Some(cond) = action.strip_prefix("if ") {
            let path = cond.trim().strip_prefix(".Values.").expect("if on .Values");
            let v = lookup(values, path);
            let truthy = match v {
                Yaml::Boolean(b) => *b,
                Yaml::String(s) => !s.is_empty(),
                Yaml::Integer(i) => *i != 0,
                _ => true,
            };
            stack.push((truthy, false));
        } else if action == "else" {
            stack.last_mut().expect("else without if").1 = true;
        } else if action == "end" {
            stack.pop().expect("end without if");
        } else if active(&stack) {
            out.push_str(&eval(action, values));
        }
        rest = &rest[end + 2..];
    }
    assert!(stack.is_empty(), "unterminated if");
    out.push_str(rest);
    out
}

fn load_values(overrides: &str) -> Yaml {
    let text = std::fs::read_to_string(Path::new(CHART).join("values.yaml")).unwrap();
    let mut values = YamlLoader::load_from_str(&text).expect("values.yaml parses")[0].clone();
    let extra = YamlLoader::load_from_str(overrides).unwrap();
    if let (Yaml::Hash(base), Some(Yaml::Hash(over))) = (&mut values, extra.first()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    values
}

/// Every rendered document of every template, parsed.
fn render_chart(values: &Yaml) -> Vec<Yaml> {
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(Path::new(CHART).join("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let rendered = render(&text, values);
            let parsed = YamlLoader::load_from_str(&rendered).unwrap_or_else(|e| {
                panic!(
                    "{} renders to invalid YAML ({e}):\n{rendered}",
                    path.display()
                )
            });
            docs.extend(parsed.into_iter().filter(|d| !d.is_null()));
        }
    }
    docs
}

fn find<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn chart_renders_a_gpu_deployment_with_probes_and_a_bundle_volume() {
    let chart = std::fs::read_to_string(Path::new(CHART).join("Chart.yaml")).unwrap();
    let chart = &YamlLoader::load_from_str(&chart).unwrap()[0];
    assert_eq!(chart["apiVersion"].as_str(), Some("v2"));
    assert_eq!(chart["name"].as_str(), Some("tensorwasmd"));

    let values = load_values("trustedKeys:\n  release.pub: \"k\"\n");
    let docs = render_chart(&values);
    let full = format!("{RELEASE}-tensorwasmd");
    let deployment = find(&docs, "Deployment", &full);
    let pod = &deployment["spec"]["template"]["spec"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let container = &pod["containers"][0];
    assert_eq!(
        container["resources"]["requests"]["nvidia.com/gpu"].as_i64(),
        Some(1)
    );
    assert_eq!(
        container["resources"]["limits"]["nvidia.com/gpu"].as_i64(),
        Some(1)
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(container["ports"][0]["containerPort"].as_i64(), Some(7878));

    // Every mount names a volume of the pod; the bundle volume is the config's data-dir.
    let volumes: Vec<&str> = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mounts = container["volumeMounts"].as_vec().unwrap();
    for m in mounts {
        assert!(volumes.contains(&m["name"].as_str().unwrap()), "{m:?}");
    }
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("no mount {name}"))
            .to_string()
    };
    let bundles = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("bundles"))
        .unwrap();
    let claim = bundles["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap();
    find(&docs, "PersistentVolumeClaim", claim);

    // The rendered config.toml is accepted by the daemon's own parser, and its paths are the
    // mounts.
    let cm = find(&docs, "ConfigMap", &full);
    let toml_text = cm["data"]["config.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml_text).unwrap();
    let parsed = tensorwasmd::server::config::FileConfig::load(&file).expect("config.toml");
    let mut config =
        tensorwasmd::server::config::Config::with_paths("x".into(), "x".into(), vec!["x".into()]);
    parsed.apply(&mut config).expect("config values");
    config.validate().expect("valid config");
    assert_eq!(config.data_dir, Path::new(&mount("bundles")));
    assert!(config.tokens.starts_with(mount("tokens")));
    assert_eq!(config.trusted, [Path::new(&mount("keys")).to_path_buf()]);
    assert_eq!(config.listen.port(), 7878);
    assert_eq!(
        container["args"][1].as_str().map(Path::new),
        Some(Path::new(&mount("config")).join("config.toml").as_path())
    );
    assert_eq!(
        find(&docs, "ConfigMap", &format!("{full}-keys"))["data"]["release.pub"].as_str(),
        Some("k")
    );
    find(&docs, "Service", &full);
}

#[test]
fn chart_without_persistence_uses_an_empty_dir_and_no_claim() {
    let values = load_values("persistence:\n  enabled: false\n  size: 1Gi\n  storageClass: \"\"\n");
    let docs = render_chart(&values);
    let deployment = find(&docs, "Deployment", &format!("{RELEASE}-tensorwasmd"));
    let bundles = deployment["spec"]["template"]["spec"]["volumes"][0].clone();
    assert_eq!(bundles["name"].as_str(), Some("bundles"));
    assert!(bundles["emptyDir"].as_hash().is_some(), "{bundles:?}");
    assert!(
        docs.iter()
            .all(|d| d["kind"].as_str() != Some("PersistentVolumeClaim"))
    );
}

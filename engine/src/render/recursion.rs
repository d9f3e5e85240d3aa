//! Refuses templates that would recurse without end when rendered: a template that
//! includes itself (directly or through others, blocks included), or a macro that calls
//! itself. Tera follows includes and macro calls at render time with no depth limit, so
//! either overflows the rendering thread's stack and aborts the process.
//!
//! The check is static and errs on the side of refusing: a block used anywhere may render
//! the body of any template's block of that name.

use std::collections::{BTreeMap, BTreeSet};
use tera::ast::{Block, Expr, ExprVal, Node};

/// A piece of template that renders as a unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    /// A template's top level (outside its blocks).
    Top(String),
    /// The body of a template's block.
    Body(String, String),
    /// Whatever defines the block of this name.
    Block(String),
    /// A macro of a template file.
    Macro(String, String),
}

impl Unit {
    fn describe(&self) -> String {
        match self {
            Self::Top(t) => format!("`{t}`"),
            Self::Body(t, b) => format!("block `{b}` of `{t}`"),
            Self::Block(b) => format!("block `{b}`"),
            Self::Macro(t, m) => format!("macro `{m}` of `{t}`"),
        }
    }
}

type Graph = BTreeMap<Unit, BTreeSet<Unit>>;

/// Collects the edges of one template into `graph`.
struct Walk<'a> {
    tera: &'a tera::Tera,
    template: &'a tera::Template,
    graph: &'a mut Graph,
}

impl Walk<'_> {
    fn edge(&mut self, from: &Unit, to: Unit) {
        self.graph.entry(from.clone()).or_default().insert(to);
    }

    fn nodes(&mut self, from: &Unit, nodes: &[Node]) {
        for node in nodes {
            self.node(from, node);
        }
    }

    fn node(&mut self, from: &Unit, node: &Node) {
        match node {
            Node::VariableBlock(_, e) => self.expr(from, e),
            Node::MacroDefinition(_, m, _) => {
                let unit = Unit::Macro(self.template.name.clone(), m.name.clone());
                for e in m.args.values().flatten() {
                    self.expr(&unit, e);
                }
                self.nodes(&unit, &m.body);
            }
            Node::Include(_, names, _) => {
                for name in names {
                    self.edge(from, Unit::Top(name.clone()));
                }
            }
            Node::Set(_, set) => self.expr(from, &set.value),
            Node::FilterSection(_, section, _) => {
                self.call_args(from, &section.filter.args);
                self.nodes(from, &section.body);
            }
            Node::Block(_, block, _) => self.block(from, block),
            Node::Forloop(_, f, _) => {
                self.expr(from, &f.container);
                self.nodes(from, &f.body);
                if let Some(body) = &f.empty_body {
                    self.nodes(from, body);
                }
            }
            Node::If(i, _) => {
                for (_, e, body) in &i.conditions {
                    self.expr(from, e);
                    self.nodes(from, body);
                }
                if let Some((_, body)) = &i.otherwise {
                    self.nodes(from, body);
                }
            }
            Node::Super => {
                if let Unit::Body(_, block) = from {
                    for parent in &self.template.parents {
                        self.edge(from, Unit::Body(parent.clone(), block.clone()));
                    }
                }
            }
            Node::Text(_)
            | Node::Extends(..)
            | Node::ImportMacro(..)
            | Node::Raw(..)
            | Node::Break(_)
            | Node::Continue(_)
            | Node::Comment(..) => {}
        }
    }

    fn block(&mut self, from: &Unit, block: &Block) {
        self.edge(from, Unit::Block(block.name.clone()));
        let body = Unit::Body(self.template.name.clone(), block.name.clone());
        self.edge(&Unit::Block(block.name.clone()), body.clone());
        self.nodes(&body, &block.body);
    }

    fn call_args(&mut self, from: &Unit, args: &std::collections::HashMap<String, Expr>) {
        for e in args.values() {
            self.expr(from, e);
        }
    }

    fn expr(&mut self, from: &Unit, e: &Expr) {
        for f in &e.filters {
            self.call_args(from, &f.args);
        }
        match &e.val {
            ExprVal::Math(m) => {
                self.expr(from, &m.lhs);
                self.expr(from, &m.rhs);
            }
            ExprVal::Logic(l) => {
                self.expr(from, &l.lhs);
                self.expr(from, &l.rhs);
            }
            ExprVal::Test(t) => {
                for a in &t.args {
                    self.expr(from, a);
                }
            }
            ExprVal::MacroCall(call) => {
                self.call_args(from, &call.args);
                let file = if call.namespace == "self" {
                    Some(self.template.name.clone())
                } else {
                    self.template
                        .imported_macro_files
                        .iter()
                        .find(|(_, ns)| *ns == call.namespace)
                        .map(|(file, _)| file.clone())
                };
                // An unknown namespace fails when rendered; nothing recurses through it.
                if let Some(file) = file.filter(|f| self.tera.templates.contains_key(f)) {
                    self.edge(from, Unit::Macro(file, call.name.clone()));
                }
            }
            ExprVal::FunctionCall(call) => self.call_args(from, &call.args),
            ExprVal::Array(items) => {
                for item in items {
                    self.expr(from, item);
                }
            }
            ExprVal::StringConcat(concat) => {
                for v in &concat.values {
                    self.expr(from, &Expr::new(v.clone()));
                }
            }
            ExprVal::In(i) => {
                self.expr(from, &i.lhs);
                self.expr(from, &i.rhs);
            }
            ExprVal::String(_)
            | ExprVal::Int(_)
            | ExprVal::Float(_)
            | ExprVal::Bool(_)
            | ExprVal::Ident(_) => {}
        }
    }
}

/// `Err` naming the first cycle of includes, blocks and macro calls among `tera`'s
/// templates, if any.
pub(super) fn check(tera: &tera::Tera) -> Result<(), String> {
    let mut graph = Graph::new();
    let mut names: Vec<&String> = tera.templates.keys().collect();
    names.sort();
    for name in names {
        let template = &tera.templates[name];
        let top = Unit::Top(name.clone());
        graph.entry(top.clone()).or_default();
        Walk { tera, template, graph: &mut graph }.nodes(&top, &template.ast);
    }
    // Depth-first search with an explicit stack (no recursion on hostile input).
    let mut state: BTreeMap<&Unit, u8> = BTreeMap::new(); // 1: on the path, 2: done
    for start in graph.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut path: Vec<(&Unit, Vec<&Unit>)> = Vec::new();
        state.insert(start, 1);
        path.push((start, graph.get(start).map(|s| s.iter().collect()).unwrap_or_default()));
        while let Some((unit, next)) = path.last_mut() {
            let unit = *unit;
            match next.pop() {
                Some(to) => match state.get(to) {
                    Some(1) => {
                        let from = path.iter().position(|(u, _)| *u == to).unwrap_or(0);
                        let cycle: Vec<String> =
                            path[from..].iter().map(|(u, _)| u.describe()).collect();
                        return Err(format!(
                            "templates recurse without end: {} → {} (includes and macros may \
                             not call themselves)",
                            cycle.join(" → "),
                            to.describe()
                        ));
                    }
                    Some(_) => {}
                    None => {
                        state.insert(to, 1);
                        let next = graph.get(to).map(|s| s.iter().collect()).unwrap_or_default();
                        path.push((to, next));
                    }
                },
                None => {
                    state.insert(unit, 2);
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_sources(sources: &[(&str, &str)], expected: Option<&str>) {
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(sources.iter().map(|(n, s)| (*n, *s))).expect("compiles");
        match (check(&tera), expected) {
            (Ok(()), None) => {}
            (Err(message), Some(want)) => assert!(message.contains(want), "{message}"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn recursion_is_refused() {
        check_sources(&[("a.html", "{% include \"a.html\" %}")], Some("`a.html` → `a.html`"));
        check_sources(
            &[("a.html", "x{% include \"b.html\" %}"), ("b.html", "{% include \"a.html\" %}")],
            Some("includes and macros may not call themselves"),
        );
        check_sources(
            &[("m.html", "{% macro f(n) %}{{ self::f(n=n) }}{% endmacro %}")],
            Some("macro `f` of `m.html`"),
        );
        check_sources(
            &[(
                "m.html",
                "{% macro f() %}{{ self::g() }}{% endmacro %}{% macro g() %}{% if true %}{{ self::f() }}{% endif %}{% endmacro %}",
            )],
            Some("macro `f`"),
        );
        // An included template's block renders the page's block of that name.
        check_sources(
            &[
                ("base.html", "{% block main %}{% endblock %}"),
                ("x.html", "{% block main %}{% endblock %}"),
                (
                    "page.html",
                    "{% extends \"base.html\" %}{% block main %}{% include \"x.html\" %}{% endblock %}",
                ),
            ],
            Some("block `main`"),
        );
    }

    #[test]
    fn ordinary_templates_pass() {
        check_sources(
            &[
                (
                    "macros.html",
                    "{% macro card(p) %}{{ self::price(p=p) }}{% endmacro %}{% macro price(p) %}{{ p }}{% endmacro %}",
                ),
                (
                    "base.html",
                    "{% import \"macros.html\" as m %}{% block main %}{% endblock %}{% include \"foot.html\" %}",
                ),
                ("foot.html", "footer"),
                (
                    "page.html",
                    "{% extends \"base.html\" %}{% block main %}{{ super() }}{% endblock %}",
                ),
            ],
            None,
        );
        let tera = super::super::compile_templates(None).expect("built-ins");
        assert_eq!(check(&tera), Ok(()));
    }
}

//! `routes!`: declares an edgeshard router in Go 1.22 `ServeMux` syntax.
//! The routing table is built and conflict-checked while compiling, and
//! emitted as `static` data, so nothing is built at start-up.
//!
//! ```ignore
//! let app = routes! {
//!     state = shared.clone();          // optional: passed to handlers that take it
//!     "GET /healthz" => healthz,
//!     "GET /users/{id}" => users::show,
//!     "POST /api/echo" => echo [layer(RequestIds::new(0))],   // this route only
//!     [layer(auth)] {                  // a group: these routes only
//!         "GET /admin/{$}" => admin::home,
//!         "POST /admin/users" => admin::add_user,
//!     },
//! };
//! ```

use edgeshard_routing::table::{HostRoot, Leaf, LeafMethod, Lit, Node};
use edgeshard_routing::{build, BuildError, Pattern, RouteInfo, Table};
use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Expr, LitStr, Path, Token};

struct Route {
    pattern: LitStr,
    handler: Path,
    /// Scopes around this route only, outermost first.
    scopes: Vec<ScopeExpr>,
}

/// `layer(<middleware>)`.
struct ScopeExpr(Expr);

impl Parse for ScopeExpr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let kind: syn::Ident = input.parse()?;
        if kind != "layer" {
            return Err(syn::Error::new(
                kind.span(),
                "expected `layer(<middleware>)`",
            ));
        }
        let inner;
        syn::parenthesized!(inner in input);
        Ok(ScopeExpr(inner.parse()?))
    }
}

/// `[scope, …]`.
fn parse_scopes(input: ParseStream) -> syn::Result<Vec<ScopeExpr>> {
    let inner;
    syn::bracketed!(inner in input);
    let scopes = Punctuated::<ScopeExpr, Token![,]>::parse_terminated(&inner)?;
    Ok(scopes.into_iter().collect())
}

/// A route, or a group of them under scopes: `[scope, …] { item, … }`.
enum Item {
    Route(Route),
    Group(Vec<ScopeExpr>, Vec<Item>),
}

impl Parse for Item {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(syn::token::Bracket) {
            let scopes = parse_scopes(input)?;
            let body;
            syn::braced!(body in input);
            let items = Punctuated::<Item, Token![,]>::parse_terminated(&body)?;
            if items.is_empty() {
                return Err(body.error("an empty group: put routes in it"));
            }
            return Ok(Item::Group(scopes, items.into_iter().collect()));
        }
        let pattern = input.parse()?;
        input.parse::<Token![=>]>()?;
        let handler = input.parse()?;
        let scopes = if input.peek(syn::token::Bracket) {
            parse_scopes(input)?
        } else {
            Vec::new()
        };
        Ok(Item::Route(Route {
            pattern,
            handler,
            scopes,
        }))
    }
}

struct Routes {
    state: Option<Expr>,
    items: Vec<Item>,
}

impl Parse for Routes {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut state = None;
        if input.peek(syn::Ident) && input.peek2(Token![=]) {
            let kw: syn::Ident = input.parse()?;
            if kw != "state" {
                return Err(syn::Error::new(
                    kw.span(),
                    "expected `state = <expr>;` or a route",
                ));
            }
            input.parse::<Token![=]>()?;
            state = Some(input.parse()?);
            input.parse::<Token![;]>()?;
        }
        let items = Punctuated::<Item, Token![,]>::parse_terminated(input)?;
        if items.is_empty() {
            return Err(input.error("routes! needs at least one route: \"GET /path\" => handler"));
        }
        Ok(Routes {
            state,
            items: items.into_iter().collect(),
        })
    }
}

/// A route as the table and the dispatch see it: flattened out of its
/// groups, with the indices of the scopes around it, outermost first.
struct Flat<'a> {
    pattern: &'a LitStr,
    handler: &'a Path,
    scopes: Vec<usize>,
}

/// Flattens `items` (in order) into `routes`; every scope gets an index in
/// `scopes` (a group's once, shared by its routes).
fn flatten<'a>(
    items: &'a [Item],
    outer: &[usize],
    routes: &mut Vec<Flat<'a>>,
    scopes: &mut Vec<&'a ScopeExpr>,
) {
    let number = |list: &'a [ScopeExpr], scopes: &mut Vec<&'a ScopeExpr>| {
        let mut around = outer.to_vec();
        for s in list {
            around.push(scopes.len());
            scopes.push(s);
        }
        around
    };
    for item in items {
        match item {
            Item::Route(r) => {
                let around = number(&r.scopes, scopes);
                routes.push(Flat {
                    pattern: &r.pattern,
                    handler: &r.handler,
                    scopes: around,
                });
            }
            Item::Group(list, inner) => {
                let around = number(list, scopes);
                flatten(inner, &around, routes, scopes);
            }
        }
    }
}

/// Declares a router: `"[METHOD ][HOST]/PATH" => handler` entries, with an
/// optional leading `state = <expr>;`. Overlapping patterns where neither
/// is more specific, and duplicates, are compile errors, across groups too.
/// A route may end with `[layer(m), …]` (middleware around it only,
/// outermost first), and `[layer(…), …] { routes }` groups routes under
/// middleware (groups nest).
#[proc_macro]
pub fn routes(input: TokenStream) -> TokenStream {
    let parsed = parse_macro_input!(input as Routes);
    match expand(parsed) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn handler_name(p: &Path) -> String {
    p.to_token_stream().to_string().replace(' ', "")
}

fn expand(input: Routes) -> syn::Result<Tokens> {
    let (mut routes, mut scopes) = (Vec::new(), Vec::new());
    flatten(&input.items, &[], &mut routes, &mut scopes);
    let mut named = Vec::with_capacity(routes.len());
    for r in &routes {
        let pattern = Pattern::parse(&r.pattern.value())
            .map_err(|e| syn::Error::new(r.pattern.span(), e.to_string()))?;
        named.push((pattern, handler_name(r.handler)));
    }
    let table = build(&named).map_err(|e| {
        let second = match &e {
            BuildError::Duplicate { second, .. } | BuildError::Conflict { second, .. } => second,
            BuildError::TooManyParams(p) => p,
        };
        let at = routes
            .iter()
            .find(|r| &r.pattern.value() == second)
            .map_or_else(proc_macro2::Span::call_site, |r| r.pattern.span());
        syn::Error::new(at, e.to_string())
    })?;
    let table = emit_table(&table);
    let dispatch = if routes.is_empty() {
        quote!(::std::future::ready(::edgeshard::route::unknown_route()))
    } else {
        dispatch_tree(&routes, 0)
    };
    let state = input.state.map_or_else(|| quote!(()), |e| quote!(#e));
    let scope_lets = scopes.iter().enumerate().map(|(i, ScopeExpr(e))| {
        let name = scope_ident(i);
        quote!(let #name = ::std::rc::Rc::new(#e);)
    });
    Ok(quote! {{
        static __EDGESHARD_ROUTES: ::edgeshard::route::Table<'static> = #table;
        #(#scope_lets)*
        ::edgeshard::route::Router::new(
            &__EDGESHARD_ROUTES,
            #state,
            move |__route: u32, __req: ::edgeshard::Request, __state| #dispatch,
        )
    }})
}

fn scope_ident(i: usize) -> syn::Ident {
    quote::format_ident!("__edgeshard_scope_{}", i)
}

/// The call of route `first + i` for `routes[i]`, as a balanced tree of
/// `Either`s split on `__route`: the handler's own future comes back,
/// not an `async` block that would hold the request once more. A scoped
/// route's future is its scopes' around it (each a clone of the scope's
/// `Rc`, moved into the closure that calls what is inside).
fn dispatch_tree(routes: &[Flat<'_>], first: u32) -> Tokens {
    if let [r] = routes {
        let h = r.handler;
        let mut call = quote!(::edgeshard::route::RouteHandler::call_route(&#h, __req, __state));
        if r.scopes.is_empty() {
            return call;
        }
        let clones: Vec<syn::Ident> = (0..r.scopes.len())
            .map(|k| quote::format_ident!("__edgeshard_scoped_{}", k))
            .collect();
        for (k, _) in r.scopes.iter().enumerate().rev() {
            let c = &clones[k];
            call = quote!(::edgeshard::route::scoped(#c, __req, move |__req: ::edgeshard::Request| #call));
        }
        let lets = r.scopes.iter().zip(&clones).map(|(&i, c)| {
            let name = scope_ident(i);
            quote!(let #c = ::std::rc::Rc::clone(&#name);)
        });
        return quote!({ #(#lets)* #call });
    }
    let mid = routes.len() / 2;
    let split = first + mid as u32;
    let left = dispatch_tree(&routes[..mid], first);
    let right = dispatch_tree(&routes[mid..], split);
    quote! {
        if __route < #split {
            ::edgeshard::route::Either::Left { inner: #left }
        } else {
            ::edgeshard::route::Either::Right { inner: #right }
        }
    }
}

fn cow_str(s: &str) -> Tokens {
    quote!(::std::borrow::Cow::Borrowed(#s))
}

fn cow_slice(items: impl Iterator<Item = Tokens>) -> Tokens {
    quote!(::std::borrow::Cow::Borrowed(&[#(#items),*]))
}

fn emit_table(t: &Table<'_>) -> Tokens {
    let rt = quote!(::edgeshard::route::table);
    let hosts = cow_slice(t.hosts.iter().map(|HostRoot { host, root }| {
        let host = cow_str(host);
        quote!(#rt::HostRoot { host: #host, root: #root })
    }));
    let nodes = cow_slice(t.nodes.iter().map(|n: &Node| {
        let Node { lit_start, lit_len, single, multi, end } = *n;
        quote!(#rt::Node { lit_start: #lit_start, lit_len: #lit_len, single: #single, multi: #multi, end: #end })
    }));
    let lits = cow_slice(t.lits.iter().map(
        |Lit {
             seg,
             node,
             len,
             key,
         }| {
            let seg = cow_str(seg);
            quote!(#rt::Lit { seg: #seg, node: #node, len: #len, key: #key })
        },
    ));
    let leaves = cow_slice(t.leaves.iter().map(|l: &Leaf| {
        let Leaf {
            meth_start,
            meth_len,
            any,
        } = *l;
        quote!(#rt::Leaf { meth_start: #meth_start, meth_len: #meth_len, any: #any })
    }));
    let leaf_methods = cow_slice(
        t.leaf_methods
            .iter()
            .map(|LeafMethod { method, route, key }| {
                let method = cow_str(method);
                quote!(#rt::LeafMethod { method: #method, route: #route, key: #key })
            }),
    );
    let routes = cow_slice(t.routes.iter().map(emit_route));
    let root = t.root;
    quote!(::edgeshard::route::Table {
        hosts: #hosts,
        root: #root,
        nodes: #nodes,
        lits: #lits,
        leaves: #leaves,
        leaf_methods: #leaf_methods,
        routes: #routes,
    })
}

fn emit_route(r: &RouteInfo<'_>) -> Tokens {
    let pattern = cow_str(&r.pattern);
    let method = match &r.method {
        Some(m) => {
            let m = cow_str(m);
            quote!(::std::option::Option::Some(#m))
        }
        None => quote!(::std::option::Option::None),
    };
    let handler = cow_str(&r.handler);
    let params = cow_slice(r.params.iter().map(|p| cow_str(p)));
    let (segments, ends_in_multi, multi_named) = (r.segments, r.ends_in_multi, r.multi_named);
    quote!(::edgeshard::route::RouteInfo {
        pattern: #pattern,
        method: #method,
        handler: #handler,
        params: #params,
        segments: #segments,
        ends_in_multi: #ends_in_multi,
        multi_named: #multi_named,
    })
}

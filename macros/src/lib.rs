//! `routes!`: declares an edgeshard router in Go 1.22 `ServeMux` syntax.
//! The routing table is built and conflict-checked while compiling, and
//! emitted as `static` data, so nothing is built at start-up.
//!
//! ```ignore
//! let app = routes! {
//!     state = shared.clone();          // optional: passed to handlers that take it
//!     "GET /healthz" => healthz,
//!     "GET /users/{id}" => users::show,
//!     "POST /api/echo" => echo,
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
}

impl Parse for Route {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let pattern = input.parse()?;
        input.parse::<Token![=>]>()?;
        let handler = input.parse()?;
        Ok(Route { pattern, handler })
    }
}

struct Routes {
    state: Option<Expr>,
    routes: Vec<Route>,
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
        let routes = Punctuated::<Route, Token![,]>::parse_terminated(input)?;
        if routes.is_empty() {
            return Err(input.error("routes! needs at least one route: \"GET /path\" => handler"));
        }
        Ok(Routes {
            state,
            routes: routes.into_iter().collect(),
        })
    }
}

/// Declares a router: `"[METHOD ][HOST]/PATH" => handler` entries, with an
/// optional leading `state = <expr>;`. Overlapping patterns where neither
/// is more specific, and duplicates, are compile errors.
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
    let mut named = Vec::with_capacity(input.routes.len());
    for r in &input.routes {
        let pattern = Pattern::parse(&r.pattern.value())
            .map_err(|e| syn::Error::new(r.pattern.span(), e.to_string()))?;
        named.push((pattern, handler_name(&r.handler)));
    }
    let table = build(&named).map_err(|e| {
        let second = match &e {
            BuildError::Duplicate { second, .. } | BuildError::Conflict { second, .. } => second,
            BuildError::TooManyParams(p) => p,
        };
        let at = input
            .routes
            .iter()
            .find(|r| &r.pattern.value() == second)
            .map_or_else(proc_macro2::Span::call_site, |r| r.pattern.span());
        syn::Error::new(at, e.to_string())
    })?;
    let table = emit_table(&table);
    let handlers: Vec<&Path> = input.routes.iter().map(|r| &r.handler).collect();
    let dispatch = if handlers.is_empty() {
        quote!(::std::future::ready(::edgeshard::route::unknown_route()))
    } else {
        dispatch_tree(&handlers, 0)
    };
    let state = input.state.map_or_else(|| quote!(()), |e| quote!(#e));
    Ok(quote! {{
        static __EDGESHARD_ROUTES: ::edgeshard::route::Table<'static> = #table;
        ::edgeshard::route::Router::new(
            &__EDGESHARD_ROUTES,
            #state,
            move |__route: u32, __req: ::edgeshard::Request, __state| #dispatch,
        )
    }})
}

/// The call of route `first + i` for `handlers[i]`, as a balanced tree of
/// `Either`s split on `__route`: the handler's own future comes back,
/// not an `async` block that would hold the request once more.
fn dispatch_tree(handlers: &[&Path], first: u32) -> Tokens {
    if let [h] = handlers {
        return quote!(::edgeshard::route::RouteHandler::call_route(&#h, __req, __state));
    }
    let mid = handlers.len() / 2;
    let split = first + mid as u32;
    let left = dispatch_tree(&handlers[..mid], first);
    let right = dispatch_tree(&handlers[mid..], split);
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

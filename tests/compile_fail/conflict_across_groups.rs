use edgeshard::middleware::Middleware;
use edgeshard::{routes, Request, Response};

async fn a(_: Request) -> &'static str {
    "a"
}

struct Nothing;

impl Middleware for Nothing {
    type Carry = ();
    fn on_request(&self, _: &mut Request) -> Result<(), Response> {
        Ok(())
    }
}

fn main() {
    // A group does not make a table of its own: its routes conflict with
    // the others as if it were not there.
    let _router = routes! {
        "/a/{x}" => a,
        [layer(Nothing)] {
            "/{y}/b" => a,
        },
    };
}

use edgeshard::{routes, Request};

async fn a(_: Request) -> &'static str {
    "a"
}

fn main() {
    let _router = routes! {
        "/a" => a [wrap(1)],
    };
}

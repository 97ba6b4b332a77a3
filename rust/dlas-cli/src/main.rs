//! The standalone `dlas-fast` executable.

fn main() {
    std::process::exit(dlas_cli::run(std::env::args_os()));
}

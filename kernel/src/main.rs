fn main() {
    std::process::exit(wand_kernel::cli::main())
}

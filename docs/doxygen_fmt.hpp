// Read by Doxygen only (docs/Doxyfile.in): declares the fmt class template that the public
// headers specialize (fmt::formatter<Tensor>, fmt::formatter<Shape>), so that Doxygen knows
// the enclosing scope. Not part of the library.
namespace fmt {
template <class T, class Char>
struct formatter;
}  // namespace fmt

/* Description: the public header umpath.h compiles alone, as pedantic C11. */
#include <umpath/umpath.h>

int main(void)
{
	struct umpath_ctx_opts o = { 0 };

	(void)o;
	return umpath_is_path_error(-5) ? 0 : 1;
}

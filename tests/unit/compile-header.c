/* Description: the public header compiles alone, as pedantic C11. */
#include <umpath/umpath.h>

int main(void)
{
	return umpath_is_path_error(-5) ? 0 : 1;
}

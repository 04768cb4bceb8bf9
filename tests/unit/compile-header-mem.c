/* Description: the test transport's header umpath-mem.h compiles alone
 * (it brings umpath.h itself), as pedantic C11. */
#include <umpath/umpath-mem.h>

int main(void)
{
	return umpath_is_path_error(-5) && UMPATH_MEM_ONLINE == 0 ? 0 : 1;
}

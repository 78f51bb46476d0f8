/* placeholder replaced by the real CLI in this same change series */
int main(void) { return 0; }

"""Course tooling: build the walkthroughs, release with nbgrader, grade submissions, the demo."""

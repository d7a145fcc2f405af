# nbgrader configuration for the grading workspace `python -m grader autograde` builds.
# The workspace is an nbgrader course directory (source/, submitted/, autograded/, gradebook.db);
# run `nbgrader formgrader` (or JupyterLab's Formgrader tab) from it to grade written answers.
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "superposition"
# A cell that runs longer than this fails (its points are lost) and grading moves on.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.allow_errors = True
# Students are created in the gradebook as their submissions arrive.
c.Autograde.create_student = True

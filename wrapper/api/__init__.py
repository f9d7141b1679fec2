"""The Python API function authors use (DESIGN §11), with DigitalHub's names: projects, the
functions kept in them, and their runs, driven through the same doors and store as the CLI.

    import wrapper as dh
    project = dh.get_or_create_project("demo")
    fn = project.new_function(name="hello", kind="python", python_version="PYTHON3_11",
                              code_src="src/hello.py", handler="hello")
    run = fn.run(action="job", parameters={"name": "Ada"}, local_execution=True)
    run.results()
"""

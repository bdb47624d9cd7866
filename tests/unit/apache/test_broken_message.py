"""Apache's first complaint about a tree broken before lehttpd ran, as one readable line."""
from lehttpd.apache.configtest import BrokenBeforeUs, first_error


def test_the_include_chain_keeps_its_last_link_and_a_long_path_its_two_ends():
    path = "/srv/" + "x" * 990
    stderr = (f"apache2: Syntax error on line 225 of /etc/apache2/apache2.conf: Syntax error on line 3 of "
              f"/etc/apache2/sites-enabled/a.conf: Could not open configuration file {path}: No such file or directory\n"
              "Action '-t' failed.\n")
    line = first_error(stderr)
    assert line.startswith("apache2: Syntax error on line 3 of /etc/apache2/sites-enabled/a.conf: Could not open")
    assert line.endswith(": No such file or directory") and "…" in line and len(line) < 250


def test_a_line_ending_in_a_colon_is_joined_to_its_detail():
    stderr = "AH00526: Syntax error on line 3 of /etc/apache2/sites-enabled/a.conf:\nInvalid command 'Foo', perhaps\n"
    assert first_error(stderr) == ("AH00526: Syntax error on line 3 of /etc/apache2/sites-enabled/a.conf: "
                                   "Invalid command 'Foo', perhaps")


def test_a_folder_that_cannot_be_written_leaves_the_rerun_command(tmp_path):
    (tmp_path / "file").write_text("")
    error = BrokenBeforeUs(("apache2ctl",), "boom\n", "").save(tmp_path / "file" / "apache")
    assert error.message.startswith("lehttpd changed nothing") and "run `apache2ctl -t` for all of it" in error.message

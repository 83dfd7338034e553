"""No query text is built from data: every Cassandra execution takes a prepared statement (values bound; table and
column names only from include/names.py / include/features.py), and MongoDB filters are dicts, never strings.

Scans dags/, plugins/, include/ and spark_jobs/ (AST). scripts/localservices/cassandra.py is out of scope: it
runs the statements of include/cql/schema.cql and role statements whose values the driver quotes.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("dags", "plugins", "include", "spark_jobs")
EXECUTES = {"execute", "execute_async"}  # statement = first argument
CONCURRENT = {"execute_concurrent", "execute_concurrent_with_args"}  # statement = second argument
MONGO_CALLS = {"find", "find_one", "find_one_and_update", "replace_one", "update_one", "update_many", "delete_one",
               "delete_many", "count_documents", "aggregate"}
MONGO_KEYWORDS = {"query", "filter", "filter_doc", "update", "update_doc", "pipeline"}


def text_expression(node: ast.AST, assigned: dict[str, list[ast.AST]], depth: int = 0) -> bool:
    """A str built in code (literal, f-string, % or + formatting, .format/.join), a SimpleStatement, or a name
    assigned one of these in the same function."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return text_expression(node.left, assigned, depth) or text_expression(node.right, assigned, depth)
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return name in ("format", "join", "SimpleStatement", "str")
    if isinstance(node, ast.Name) and depth < 5:
        return any(text_expression(value, assigned, depth + 1) for value in assigned.get(node.id, []))
    return False


def call_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def scopes(tree: ast.Module):
    """(scope, names assigned in it): the module and every function."""
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name) and node.value:
                assigned.setdefault(node.target.id, []).append(node.value)
        yield scope, assigned


def check(source: str, where: str) -> tuple[list[str], int, int]:
    """(problems, CQL executions seen, Mongo calls with a dict filter seen)."""
    problems: set[str] = set()
    executions, dict_filters = set(), set()
    for scope, assigned in scopes(ast.parse(source)):
        for call in (n for n in ast.walk(scope) if isinstance(n, ast.Call)):
            name, at = call_name(call), f"{where}:{call.lineno}"
            statement = None
            if name in EXECUTES and call.args:
                statement = call.args[0]
            elif name in CONCURRENT and len(call.args) > 1:
                statement = call.args[1]
            if statement is not None:
                executions.add(at)
                if text_expression(statement, assigned):
                    problems.add(f"{at}: {name}() runs query text; prepare it and bind the values")
            if name in MONGO_CALLS:
                # pymongo's Collection methods: filter (and update) are the positional arguments
                filters = [*call.args, *(k.value for k in call.keywords if k.arg in MONGO_KEYWORDS)]
                for value in filters:
                    if text_expression(value, assigned):
                        problems.add(f"{at}: {name}() gets a string filter; pass a dict")
                    elif isinstance(value, ast.Dict):
                        dict_filters.add(at)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "$where" in node.value:
            problems.add(f"{where}:{node.lineno}: $where runs JavaScript in MongoDB")
    return sorted(problems), len(executions), len(dict_filters)


def test_project_code_prepares_cql_and_uses_dict_filters():
    problems, executions, dict_filters = [], 0, 0
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found, n, d = check(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
            problems += found
            executions += n
            dict_filters += d
    assert not problems, "\n".join(problems)
    # The scan must have seen the project's queries, or it proved nothing.
    assert executions >= 4, f"only {executions} CQL executions found"
    assert dict_filters >= 5, f"only {dict_filters} Mongo calls with a dict filter found"


def test_the_check_catches_query_text():
    unprepared = '''
def select(session, table, recordings):
    query = f"SELECT * FROM ks.{table}"
    if recordings is None:
        return session.execute(query)
    session.execute("DELETE FROM t WHERE k = '%s'" % recordings[0])
    session.execute("SELECT * FROM t WHERE k = '{}'".format(recordings[0]))
    session.execute(SimpleStatement("SELECT 1"))
    execute_concurrent_with_args(session, "INSERT INTO t (k) VALUES (%s)", [(r,) for r in recordings])
    collection.find('{"_id": "%s"}' % recordings[0])
    collection.find({"$where": "this.a == 1"})
    collection.update_one('{"_id": 1}', {"$set": {"a": 1}})
'''
    problems, _, _ = check(unprepared, "snippet")
    assert sorted(int(p.split(":")[1]) for p in problems) == list(range(5, 13)), problems
    prepared = '''
def select(session, table, recordings):
    statement = session.prepare(f"SELECT * FROM ks.{table} WHERE k = ?")
    session.execute(statement, (recordings[0],))
    session.execute(session.prepare("SELECT 1"))
    collection.find_one({"_id": recordings[0]})
'''
    assert check(prepared, "snippet") == ([], 2, 1)
